//! The scanner against serde_json, and its word-at-a-time paths byte by
//! byte.

use super::*;

fn skip(input: &str, limits: Limits) -> Scan<&str> {
    let mut s = Scanner::new(input.as_bytes(), limits)?;
    let v = s.value()?;
    s.end()?;
    Ok(v)
}

#[test]
fn agrees_with_serde_json_on_handwritten_cases() {
    let cases = [
        "0",
        "-0",
        "-0.5e+3",
        "1E9",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "00",
        "true",
        "tru",
        "truee",
        "nul",
        "false",
        "\"\"",
        "\"\\u00e9\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"a\tb\"",
        "\"abc",
        "[]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:2}",
        "{\"a\":[{\"b\":[]}],\"c\":{}}",
        "[[[[]]]]",
        "[[[]]",
        "{\"a\":}",
        "\"0123456789abcdef0123456789\\\"\"",
        "\"é—🎉 long enough for a word\"",
        " [ 1 , { \"k\" : null } ] ",
        "{\"a\":1}}",
        "[1]]",
        "",
    ];
    for case in cases {
        let ours = skip(case, Limits::GRAMMAR).is_ok();
        let serde = serde_json::from_str::<serde::de::IgnoredAny>(case).is_ok();
        assert_eq!(ours, serde, "{case:?}");
    }
}

#[test]
fn finds_the_exact_span() {
    let mut s = Scanner::new(br#"  {"a":[1,"]"]} , 2"#, Limits::GRAMMAR).unwrap();
    assert_eq!(s.value().unwrap(), r#"{"a":[1,"]"]}"#);
    assert_eq!(s.peek(), Some(b','));
}

#[test]
fn special_bytes_are_found_at_every_offset() {
    for special in [b'"', b'\\', 0x00, 0x1f] {
        for at in 0..20 {
            let mut bytes = vec![b'x'; 20];
            bytes[at] = special;
            assert_eq!(find_special(&bytes, 0), at);
            // Bytes above 0x7f (UTF-8 continuation) are not special.
            bytes[at] = 0xc3;
            assert_eq!(find_special(&bytes, 0), 20);
        }
    }
}

#[test]
fn depth_limit_counts_the_root() {
    let nest = |n: usize| "[".repeat(n) + &"]".repeat(n);
    assert!(skip(&nest(SERDE_DEPTH_LIMIT), Limits::SERDE).is_ok());
    assert!(skip(&nest(SERDE_DEPTH_LIMIT + 1), Limits::SERDE).is_err());
    assert!(serde_json::from_str::<serde_json::Value>(&nest(SERDE_DEPTH_LIMIT)).is_ok());
    assert!(serde_json::from_str::<serde_json::Value>(&nest(SERDE_DEPTH_LIMIT + 1)).is_err());
    // Without a limit, depth costs bits, not stack.
    assert!(skip(&nest(200_000), Limits::GRAMMAR).is_ok());
    assert!(skip(&(nest(200_000) + "]"), Limits::GRAMMAR).is_err());
}

#[test]
fn surrogates_are_paired_only_when_asked() {
    for (s, paired) in [
        (r#""\ud83c\udf89""#, true),
        (r#""\ud800""#, false),
        (r#""\ud800\u0041""#, false),
        (r#""\udc00""#, false),
        (r#""\ud800x""#, false),
    ] {
        assert!(skip(s, Limits::GRAMMAR).is_ok(), "{s}");
        assert_eq!(skip(s, Limits::SERDE).is_ok(), paired, "{s}");
        assert_eq!(serde_json::from_str::<String>(s).is_ok(), paired, "{s}");
    }
}

/// `text` placed at every offset inside a string long enough to span
/// several words, judged by the scanner and by serde_json alike.
fn at_every_offset(text: &str) {
    for at in 0..20 {
        for tail in [0, 1, 9] {
            let case = format!("\"{}{text}{}\"", "a".repeat(at), "b".repeat(tail));
            // serde_json decoding the string is the strict verdict; the
            // grammar alone also takes a lone surrogate escape.
            let decoded = serde_json::from_str::<String>(&case).is_ok();
            let lone = case.contains("\\ud800") || case.contains("\\udc00");
            for (limits, want) in [(Limits::GRAMMAR, decoded || lone), (Limits::SERDE, decoded)] {
                let ours = skip(&case, limits);
                assert_eq!(ours.is_ok(), want, "{case:?} {limits:?}");
                if let Ok(span) = ours {
                    assert_eq!(span, case, "{case:?}");
                }
            }
        }
    }
}

#[test]
fn escapes_across_word_boundaries() {
    for text in [
        r#"\""#,
        r"\\",
        r#"\\\""#,
        r"\/\b\f\n\r\t",
        r"\u00e9",
        r"\uD83C\uDF89",
        r"\ud800",
        r"\udc00",
        r"\u12",
        r"\x",
        "\\",
    ] {
        at_every_offset(text);
    }
}

#[test]
fn backslash_quote_sequences_end_where_they_should() {
    // An escaped backslash then the closing quote; an escaped quote
    // with no closing one; both inside a longer document.
    for (case, ok) in [
        (r#""abc\\""#, true),
        (r#""abc\\\""#, false),
        (r#""abcdefgh\\\\""#, true),
        (r#""abcdefg\"\\""#, true),
        (r#"["\\",1]"#, true),
        (r#"["\\\",1]"#, false),
    ] {
        assert_eq!(skip(case, Limits::GRAMMAR).is_ok(), ok, "{case}");
        assert_eq!(
            serde_json::from_str::<serde::de::IgnoredAny>(case).is_ok(),
            ok,
            "{case}"
        );
    }
}

#[test]
fn multi_byte_utf8_is_plain_whatever_its_low_bits() {
    // Continuation and lead bytes whose low seven bits are `"` (0xa2),
    // `\` (0xdc) or a control byte (0x9c, 0x80, 0xc2): none is special.
    for text in ["¢", "ܜ", "Ü", "é—🎉", "\u{80}", "\u{7ff}\u{ffff}\u{10ffff}"] {
        at_every_offset(text);
        assert!(text.bytes().all(|b| b >= 0x80));
    }
    // DEL is not a control byte for JSON.
    at_every_offset("\u{7f}");
}

#[test]
fn control_bytes_are_refused_in_strings() {
    for c in (0u8..0x20).map(char::from) {
        at_every_offset(&c.to_string());
        assert!(skip(&format!("\"{c}\""), Limits::GRAMMAR).is_err());
    }
}

#[test]
fn the_word_test_matches_the_byte_test_for_every_byte() {
    for b in 0..=255u8 {
        for lane in 0..8 {
            let mut word = [b'x'; 8];
            word[lane] = b;
            let special = !plain_bytes(u64::from_le_bytes(word)) & HIGHS;
            let expected = b == b'"' || b == b'\\' || b < 0x20;
            assert_eq!(special != 0, expected, "{b:#x} in lane {lane}");
            if expected {
                assert_eq!(special.trailing_zeros() / 8, lane as u32);
            }
        }
    }
}

proptest::proptest! {
    /// The word-at-a-time search finds what a byte loop finds.
    #[test]
    fn find_special_agrees_with_a_byte_loop(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        from in 0usize..40,
    ) {
        let from = from.min(bytes.len());
        let naive = (from..bytes.len())
            .find(|&i| bytes[i] == b'"' || bytes[i] == b'\\' || bytes[i] < 0x20)
            .unwrap_or(bytes.len());
        proptest::prop_assert_eq!(find_special(&bytes, from), naive);
    }
}

#[test]
fn invalid_utf8_is_refused_up_front() {
    assert!(Scanner::new(b"\"\xff\"", Limits::GRAMMAR).is_err());
}
