//! A validating JSON scanner that finds where values end without building
//! them: the single pass behind [`fields`](super::fields).
//!
//! The field guards only ever look at top-level member names; everything
//! below is copied or dropped as bytes. serde_json can skip a value
//! (`IgnoredAny`, `RawValue`) but pays for a visitor call per token, which
//! made skipping a 1.3 KB record cost about as much as the rest of the
//! guard stack together. This scanner checks the same grammar (RFC 8259:
//! strings without control bytes and with valid escapes, numbers, literals,
//! balanced containers) with a word-at-a-time string scan and an explicit
//! stack instead of recursion, so a value nested 100,000 deep costs memory
//! proportional to its depth in bits, never the thread's stack.
//!
//! The whole input is checked as UTF-8 once, up front; slicing it at the
//! ASCII delimiters the scanner stops on always lands on a char boundary.

use std::{borrow::Cow, fmt, ops::Range};

/// The deepest nesting serde_json accepts, counting the root: one level
/// more and a handler that parses the body with serde_json refuses it, so
/// the write check refuses it first.
pub(crate) const SERDE_DEPTH_LIMIT: usize = 127;

/// How strict a scan is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Containers open at once, the root included; `usize::MAX` for none.
    pub(crate) max_depth: usize,
    /// Refuse `\u` escapes that are unpaired UTF-16 surrogates, as
    /// serde_json does when it decodes a string (a write body is about to
    /// be decoded by the handler). Skipped values need only the grammar.
    pub(crate) paired_surrogates: bool,
}

impl Limits {
    /// For responses being filtered: the grammar, at any depth.
    pub(crate) const GRAMMAR: Self = Self {
        max_depth: usize::MAX,
        paired_surrogates: false,
    };
    /// For write bodies: what serde_json will accept when the handler
    /// parses the body.
    pub(crate) const SERDE: Self = Self {
        max_depth: SERDE_DEPTH_LIMIT,
        paired_surrogates: true,
    };
}

/// Why a document was refused, and where. Boxed: errors are rare, and a
/// one-pointer error keeps every `Scan<T>` on the hot path in registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError(Box<ErrorAt>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct ErrorAt {
    reason: &'static str,
    offset: usize,
}

impl ScanError {
    #[cold]
    fn new(reason: &'static str, offset: usize) -> Self {
        Self(Box::new(ErrorAt { reason, offset }))
    }
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.0.reason, self.0.offset)
    }
}

pub(crate) type Scan<T> = Result<T, ScanError>;

/// A member name: borrowed when it had no escapes, decoded when it had,
/// and where its opening quote is.
#[derive(Debug)]
pub(crate) struct Key<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) start: usize,
}

/// A cursor over a UTF-8 JSON document.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    limits: Limits,
    /// Containers the callers opened around the cursor ([`Scanner::open`]);
    /// a skipped value may nest only as deep as the limit leaves room for.
    depth: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `input`.
    ///
    /// # Errors
    ///
    /// When `input` is not UTF-8 (JSON text must be).
    pub(crate) fn new(input: &'a [u8], limits: Limits) -> Scan<Self> {
        let text = std::str::from_utf8(input)
            .map_err(|e| ScanError::new("invalid UTF-8", e.valid_up_to()))?;
        Ok(Self::over(text, limits))
    }

    /// A scanner over text already known to be UTF-8.
    fn over(text: &'a str, limits: Limits) -> Self {
        Self {
            text,
            pos: 0,
            limits,
            depth: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// An error at the cursor.
    pub(crate) fn error(&self, reason: &'static str) -> ScanError {
        ScanError::new(reason, self.pos)
    }

    #[cold]
    fn fail<T>(&self, reason: &'static str) -> Scan<T> {
        Err(self.error(reason))
    }

    /// Where the cursor is.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.pos = skip_ws(self.bytes(), self.pos);
        self.bytes().get(self.pos).copied()
    }

    /// Consumes `byte` (after whitespace) or fails with `reason`.
    #[inline]
    pub(crate) fn expect(&mut self, byte: u8, reason: &'static str) -> Scan<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(reason)
        }
    }

    /// Succeeds when only whitespace is left.
    pub(crate) fn end(&mut self) -> Scan<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("trailing characters"),
        }
    }

    /// Enters a container the caller walks itself (the root object or
    /// array), counting it against the depth limit.
    pub(crate) fn open(&mut self, byte: u8) -> Scan<()> {
        self.expect(byte, "expected a container")?;
        self.push_depth()
    }

    /// After the first member or element: `true` when another follows
    /// (its comma consumed), `false` when `close` ended the container.
    #[inline]
    pub(crate) fn next_or_close(&mut self, close: u8) -> Scan<bool> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => self.fail("expected `,` or the end of the container"),
        }
    }

    /// Just after an opening bracket: consumes `close` when the container
    /// is empty.
    #[inline]
    pub(crate) fn close_if_empty(&mut self, close: u8) -> bool {
        if self.peek() == Some(close) {
            self.pos += 1;
            self.depth -= 1;
            true
        } else {
            false
        }
    }

    #[inline]
    fn push_depth(&mut self) -> Scan<()> {
        self.depth += 1;
        if self.depth >= self.limits.max_depth.saturating_add(1) {
            return self.fail("nested too deeply");
        }
        Ok(())
    }

    /// A member name and its colon.
    pub(crate) fn key(&mut self) -> Scan<Key<'a>> {
        if self.peek() != Some(b'"') {
            return self.fail("expected a member name");
        }
        let start = self.pos;
        let escaped = self.string()?;
        let raw = &self.text[start..self.pos];
        let key = if escaped {
            // Rare: decode with serde_json, which also refuses lone
            // surrogates (a name must be a real string to be compared).
            match serde_json::from_str::<String>(raw) {
                Ok(k) => Cow::Owned(k),
                Err(_) => return Err(ScanError::new("invalid escape in a member name", start)),
            }
        } else {
            Cow::Borrowed(&raw[1..raw.len() - 1])
        };
        self.expect(b':', "expected `:`")?;
        Ok(Key { name: key, start })
    }

    /// Skips one value (after whitespace) and returns its text.
    pub(crate) fn value(&mut self) -> Scan<&'a str> {
        let range = self.value_range()?;
        Ok(&self.text[range])
    }

    /// Skips one value (after whitespace), checking it, and returns where
    /// it lies.
    pub(crate) fn value_range(&mut self) -> Scan<Range<usize>> {
        if self.peek().is_none() {
            return self.fail("expected a value");
        }
        let start = self.pos;
        let room = self.limits.max_depth.saturating_sub(self.depth);
        self.pos = skip_value(self.bytes(), start, room, self.limits.paired_surrogates)?;
        Ok(start..self.pos)
    }

    /// A string at `self.pos` (on its opening quote). Returns whether it
    /// had escapes.
    fn string(&mut self) -> Scan<bool> {
        let (end, escaped) =
            skip_string(self.bytes(), self.pos + 1, self.limits.paired_surrogates)?;
        self.pos = end;
        Ok(escaped)
    }
}

// ---------------------------------------------------------------------------
// The skipping core: free functions over `(bytes, pos)` with the cursor in a
// register, one loop for any nesting, errors boxed off the hot path.

#[cold]
fn fail_at<T>(reason: &'static str, offset: usize) -> Scan<T> {
    Err(ScanError::new(reason, offset))
}

/// JSON's whitespace: these four bytes and no other (not the form feed
/// that `u8::is_ascii_whitespace` also takes).
#[inline(always)]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

#[inline(always)]
fn skip_ws(bytes: &[u8], pos: usize) -> usize {
    // Compact JSON (what serializers write) has no whitespace between
    // tokens: one comparison answers that, the loop is for the rest.
    match bytes.get(pos) {
        Some(&b) if b > b' ' => pos,
        _ => skip_ws_slow(bytes, pos),
    }
}

#[inline(never)]
fn skip_ws_slow(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(|&b| is_ws(b)) {
        pos += 1;
    }
    pos
}

/// `bytes` without the JSON whitespace around it.
pub(crate) fn trim_ws(bytes: &[u8]) -> &[u8] {
    let start = skip_ws(bytes, 0);
    let end = bytes
        .iter()
        .rposition(|&b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// The byte at `pos`, or 0 past the end. A NUL byte is never valid JSON
/// outside a string, so every check that refuses it refuses the end too:
/// one load and no separate bounds test per token.
#[inline(always)]
fn at(bytes: &[u8], pos: usize) -> u8 {
    bytes.get(pos).copied().unwrap_or(0)
}

/// Skips whitespace from `pos`; returns where the next token starts and
/// its first byte ([`at`]).
#[inline(always)]
fn next_token(bytes: &[u8], pos: usize) -> (usize, u8) {
    let b = at(bytes, pos);
    if b > b' ' {
        (pos, b)
    } else {
        let pos = skip_ws_slow(bytes, pos);
        (pos, at(bytes, pos))
    }
}

/// A member name and its colon at `pos` (after whitespace, `b` the byte
/// there); returns the value after it, as [`next_token`] does.
#[inline(always)]
fn skip_member_name(bytes: &[u8], pos: usize, b: u8, paired: bool) -> Scan<(usize, u8)> {
    if b != b'"' {
        return fail_at("expected a member name", pos);
    }
    let (end, _) = skip_string(bytes, pos + 1, paired)?;
    let (colon, c) = next_token(bytes, end);
    if c != b':' {
        return fail_at("expected `:`", colon);
    }
    Ok(next_token(bytes, colon + 1))
}

/// Skips the value starting at `pos` (no whitespace before it) with room
/// for `room` more open containers; returns where it ends. Iterative:
/// nesting is a bit per level (set for an object), never recursion.
fn skip_value(bytes: &[u8], mut pos: usize, room: usize, paired: bool) -> Scan<usize> {
    let mut open = BitStack::default();
    let mut b = at(bytes, pos);
    loop {
        // A value starts at `pos`, `b` its first byte.
        match b {
            b'"' => pos = skip_string(bytes, pos + 1, paired)?.0,
            b'{' | b'[' => {
                if open.len >= room {
                    return fail_at("nested too deeply", pos);
                }
                let object = b == b'{';
                let (inner, c) = next_token(bytes, pos + 1);
                // `}` and `]` are two past `{` and `[`.
                if c == b + 2 {
                    pos = inner + 1;
                } else {
                    open.push(object);
                    (pos, b) = if object {
                        skip_member_name(bytes, inner, c, paired)?
                    } else {
                        (inner, c)
                    };
                    continue;
                }
            }
            b'-' | b'0'..=b'9' => pos = skip_number(bytes, pos)?,
            b't' => pos = skip_literal(bytes, pos, b"true", 4)?,
            b'f' => pos = skip_literal(bytes, pos, b"alse", 5)?,
            b'n' => pos = skip_literal(bytes, pos, b"null", 4)?,
            _ => return fail_at("expected a value", pos),
        }
        // A value ended at `pos`: close what ends here, then find the next.
        loop {
            let Some(object) = open.top() else {
                return Ok(pos);
            };
            let c;
            (pos, c) = next_token(bytes, pos);
            if c == b',' {
                let (next, c) = next_token(bytes, pos + 1);
                (pos, b) = if object {
                    skip_member_name(bytes, next, c, paired)?
                } else {
                    (next, c)
                };
                break;
            }
            if c == if object { b'}' } else { b']' } {
                pos += 1;
                open.pop();
            } else {
                return fail_at("expected `,` or the end of the container", pos);
            }
        }
    }
}

/// The rest of a string whose opening quote is just before `pos`: returns
/// the position after its closing quote and whether it had escapes.
#[inline(always)]
fn skip_string(bytes: &[u8], mut pos: usize, paired: bool) -> Scan<(usize, bool)> {
    let mut escaped = false;
    loop {
        pos = find_special(bytes, pos);
        match at(bytes, pos) {
            b'"' => return Ok((pos + 1, escaped)),
            b'\\' => {
                escaped = true;
                pos = skip_escape(bytes, pos, paired)?;
            }
            _ if pos >= bytes.len() => return fail_at("unterminated string", pos),
            _ => return fail_at("control character in a string", pos),
        }
    }
}

/// An escape at `pos` (on its backslash); returns the position after it.
fn skip_escape(bytes: &[u8], pos: usize, paired: bool) -> Scan<usize> {
    match bytes.get(pos + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(pos + 2),
        Some(b'u') => {
            let unit = hex4(bytes, pos + 2)?;
            let after = pos + 6;
            if !paired {
                return Ok(after);
            }
            match unit {
                0xD800..=0xDBFF => {
                    let low = if bytes.get(after..after + 2) == Some(b"\\u") {
                        hex4(bytes, after + 2)?
                    } else {
                        0
                    };
                    if (0xDC00..=0xDFFF).contains(&low) {
                        Ok(after + 6)
                    } else {
                        fail_at("unpaired surrogate escape", pos)
                    }
                }
                0xDC00..=0xDFFF => fail_at("unpaired surrogate escape", pos),
                _ => Ok(after),
            }
        }
        _ => fail_at("invalid escape", pos),
    }
}

fn hex4(bytes: &[u8], at: usize) -> Scan<u16> {
    let Some(digits) = bytes.get(at..at + 4) else {
        return fail_at("truncated escape", at);
    };
    let mut unit = 0u16;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return fail_at("invalid hex digit in an escape", at),
        };
        unit = unit << 4 | u16::from(v);
    }
    Ok(unit)
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` at `pos`.
#[inline(always)]
fn skip_number(bytes: &[u8], mut pos: usize) -> Scan<usize> {
    let digits = |pos: &mut usize| {
        let start = *pos;
        while at(bytes, *pos).is_ascii_digit() {
            *pos += 1;
        }
        *pos - start
    };
    pos += usize::from(at(bytes, pos) == b'-');
    match at(bytes, pos) {
        b'0' => pos += 1,
        b'1'..=b'9' => {
            digits(&mut pos);
        }
        _ => return fail_at("invalid number", pos),
    }
    let mut b = at(bytes, pos);
    if b == b'.' {
        pos += 1;
        if digits(&mut pos) == 0 {
            return fail_at("invalid number", pos);
        }
        b = at(bytes, pos);
    }
    if b | 0x20 == b'e' {
        pos += 1;
        pos += usize::from(matches!(at(bytes, pos), b'+' | b'-'));
        if digits(&mut pos) == 0 {
            return fail_at("invalid number", pos);
        }
    }
    Ok(pos)
}

/// `true`, `false` or `null` at `pos` (on its first letter, which the
/// caller matched): its last four bytes compared as one word.
#[inline(always)]
fn skip_literal(bytes: &[u8], pos: usize, word: &[u8; 4], len: usize) -> Scan<usize> {
    let tail = pos + len - 4;
    match bytes.get(tail..).and_then(<[u8]>::first_chunk::<4>) {
        Some(found) if found == word => Ok(pos + len),
        _ => fail_at("invalid literal", pos),
    }
}

const LOW7: u64 = u64::from_ne_bytes([0x7f; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Per byte of `word`, the high bit set where the byte may stand in a
/// string as it is: not `"`, not `\`, not a control byte below 0x20
/// (bytes from 0x80 up, UTF-8 sequences checked up front, are plain).
/// Exact for every byte: the high bits are cleared before the additions,
/// so no carry crosses from one byte into the next.
#[inline(always)]
fn plain_bytes(word: u64) -> u64 {
    const QUOTE: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASH: u64 = u64::from_ne_bytes([b'\\'; 8]);
    // `low + 0x60` reaches 0x80 exactly when `low` is 0x20 or more.
    const PRINTABLE: u64 = u64::from_ne_bytes([0x80 - 0x20; 8]);
    let low = word & LOW7;
    // `x + 0x7f` reaches 0x80 exactly when `x` is not zero.
    let not_quote = (low ^ QUOTE) + LOW7;
    let not_backslash = (low ^ BACKSLASH) + LOW7;
    let printable = low + PRINTABLE;
    (not_quote & not_backslash & printable) | word
}

/// The index of the first `"`, `\` or control byte at or after `pos`, or
/// the length of `bytes`. Eight bytes at a time: the common string has none
/// of them for dozens of bytes.
#[inline(always)]
fn find_special(bytes: &[u8], mut pos: usize) -> usize {
    // One bound for the whole loop: every word read ends at or before it.
    let last_word = bytes.len().saturating_sub(8);
    while pos <= last_word && bytes.len() >= 8 {
        let chunk: &[u8; 8] = bytes[pos..pos + 8].try_into().expect("eight bytes");
        let special = !plain_bytes(u64::from_le_bytes(*chunk)) & HIGHS;
        if special != 0 {
            return pos + (special.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&b) = bytes.get(pos) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return pos;
        }
        pos += 1;
    }
    pos
}

/// A stack of bits, one per open container; no allocation until it is
/// deeper than 64.
#[derive(Default)]
struct BitStack {
    top: u64,
    len: usize,
    spilled: Vec<u64>,
}

impl BitStack {
    #[inline(always)]
    fn push(&mut self, bit: bool) {
        if self.len > 0 && self.len.is_multiple_of(64) {
            self.spill();
        }
        self.top = self.top << 1 | u64::from(bit);
        self.len += 1;
    }

    #[inline(always)]
    fn top(&self) -> Option<bool> {
        (self.len > 0).then_some(self.top & 1 == 1)
    }

    #[inline(always)]
    fn pop(&mut self) {
        self.top >>= 1;
        self.len -= 1;
        if self.len > 0 && self.len.is_multiple_of(64) {
            self.unspill();
        }
    }

    // Past 64 levels only: out of the hot loop.
    #[cold]
    fn spill(&mut self) {
        self.spilled.push(self.top);
        self.top = 0;
    }

    #[cold]
    fn unspill(&mut self) {
        self.top = self.spilled.pop().expect("a spilled word per 64 levels");
    }
}

#[cfg(test)]
mod tests;
