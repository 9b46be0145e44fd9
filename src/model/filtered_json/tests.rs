//! The typed filter against the byte filter: the same bytes for every
//! shape both understand, and errors (never unfiltered output) for what
//! neither can filter.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, value::RawValue, Value};

use super::{page_to_vec, to_vec};
use crate::model::fields::filter_document;

fn readable(key: &str) -> bool {
    matches!(key, "id" | "anagraphic" | "createdAt" | "7" | "Kept")
}

/// What FieldFilter would send for `value` serialized whole.
fn cut<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    filter_document(&serde_json::to_vec(value).unwrap(), readable).unwrap()
}

fn text(bytes: serde_json::Result<Vec<u8>>) -> String {
    String::from_utf8(bytes.unwrap()).unwrap()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Student {
    id: &'static str,
    anagraphic: Anagraphic,
    sensitive: Option<Sensitive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<Value>,
    created_at: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Anagraphic {
    first_name: &'static str,
    custom_fields: BTreeMap<&'static str, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Sensitive {
    disability_info: &'static str,
}

fn student() -> Student {
    Student {
        id: "s-1",
        anagraphic: Anagraphic {
            first_name: "Marco",
            custom_fields: BTreeMap::from([("nickname", json!("Marc"))]),
        },
        sensitive: Some(Sensitive {
            disability_info: "ADHD",
        }),
        family: None,
        created_at: "2026-03-01",
    }
}

#[test]
fn a_struct_keeps_its_readable_fields_as_the_byte_filter_would() {
    let typed = text(to_vec(&student(), readable));
    assert_eq!(
        typed,
        r#"{"id":"s-1","anagraphic":{"firstName":"Marco","customFields":{"nickname":"Marc"}},"createdAt":"2026-03-01"}"#
    );
    assert_eq!(typed.as_bytes(), cut(&student()));
    assert!(
        !typed.contains("ADHD"),
        "the dropped group is never written"
    );
}

#[test]
fn nothing_readable_is_an_empty_object_and_everything_readable_is_the_whole() {
    assert_eq!(text(to_vec(&student(), |_| false)), "{}");
    assert_eq!(
        to_vec(&student(), |_| true).unwrap(),
        serde_json::to_vec(&student()).unwrap()
    );
}

#[test]
fn maps_and_flattened_fields_are_judged_by_key() {
    #[derive(Serialize)]
    struct Flat {
        id: u32,
        #[serde(flatten)]
        groups: BTreeMap<String, Value>,
    }
    let flat = Flat {
        id: 1,
        groups: BTreeMap::from([
            ("anagraphic".to_owned(), json!({"a": 1})),
            ("sensitive".to_owned(), json!({"b": 2})),
        ]),
    };
    assert_eq!(
        text(to_vec(&flat, readable)),
        r#"{"id":1,"anagraphic":{"a":1}}"#
    );
    assert_eq!(to_vec(&flat, readable).unwrap(), cut(&flat));

    // Number keys are judged as the text JSON writes.
    let numbered = HashMap::from([(7u32, "kept"), (8u32, "dropped")]);
    assert_eq!(text(to_vec(&numbered, readable)), r#"{"7":"kept"}"#);
}

#[test]
fn arrays_filter_each_entity_and_keep_scalars() {
    let list = json!([
        {"id": 1, "sensitive": {"x": 1}},
        "a scalar",
        null,
        {"anagraphic": {"y": [1, 2]}, "financial": 3}
    ]);
    let typed = text(to_vec(&list, readable));
    assert_eq!(
        typed,
        r#"[{"id":1},"a scalar",null,{"anagraphic":{"y":[1,2]}}]"#
    );
    assert_eq!(typed.as_bytes(), cut(&list));
    let structs = [student(), student()];
    assert_eq!(to_vec(&structs, readable).unwrap(), cut(&structs));
    let tuple = (student(), 5);
    assert_eq!(to_vec(&tuple, readable).unwrap(), cut(&tuple));
}

#[test]
fn an_array_in_an_array_is_refused_as_the_byte_filter_refuses_it() {
    let nested = json!([[{"sensitive": 1}]]);
    let err = to_vec(&nested, readable).unwrap_err();
    assert!(
        err.to_string().contains("array directly in an array"),
        "{err}"
    );
    assert!(filter_document(&serde_json::to_vec(&nested).unwrap(), readable).is_err());
}

#[test]
fn pages_filter_data_and_keep_meta() {
    let data = [student(), student()];
    let meta = json!({"total": 2, "sensitive": "meta is kept"});
    let typed = page_to_vec(&data, &meta, readable).unwrap();
    #[derive(Serialize)]
    struct Page<'a> {
        data: &'a [Student],
        meta: &'a Value,
    }
    let whole = serde_json::to_vec(&Page {
        data: &data,
        meta: &meta,
    })
    .unwrap();
    assert_eq!(typed, filter_document(&whole, readable).unwrap());
    assert!(String::from_utf8(typed)
        .unwrap()
        .ends_with(r#""meta":{"sensitive":"meta is kept","total":2}}"#));

    let err = page_to_vec(&student(), &meta, readable).unwrap_err();
    assert!(
        err.to_string().contains("page's data must be an array"),
        "{err}"
    );
    assert!(page_to_vec(&[[1]], &meta, readable).is_err());
    assert!(page_to_vec(&"text", &meta, readable).is_err());
}

#[test]
fn an_object_named_like_a_page_is_an_entity_when_not_written_as_one() {
    // The byte filter would keep `meta` verbatim; the typed one keeps
    // nothing `keep` did not accept.
    let doc = json!({"data": [{"sensitive": 1}], "meta": {"sensitive": 2}});
    assert_eq!(text(to_vec(&doc, readable)), "{}");
}

#[test]
fn enum_variants_are_one_member_objects() {
    #[derive(Serialize)]
    enum Shape {
        Kept { sensitive: u8 },
        Dropped { anagraphic: u8 },
        KeptTuple(u8, u8),
        DroppedNewtype(u8),
        Unit,
    }
    for (value, expected) in [
        (Shape::Kept { sensitive: 1 }, r#"{"Kept":{"sensitive":1}}"#),
        (Shape::Dropped { anagraphic: 1 }, "{}"),
        (Shape::KeptTuple(1, 2), "{}"),
        (Shape::DroppedNewtype(3), "{}"),
        (Shape::Unit, r#""Unit""#),
    ] {
        let typed = text(to_vec(&value, readable));
        assert_eq!(typed, expected);
        assert_eq!(typed.as_bytes(), cut(&value));
    }
}

#[test]
fn scalars_and_wrappers_are_transparent() {
    #[derive(Serialize)]
    struct Wrapper(Student);
    assert_eq!(
        to_vec(&Wrapper(student()), readable).unwrap(),
        cut(&student())
    );
    assert_eq!(to_vec(&Some(student()), readable).unwrap(), cut(&student()));
    assert_eq!(text(to_vec(&None::<Student>, readable)), "null");
    assert_eq!(text(to_vec(&12.5, readable)), "12.5");
    assert_eq!(text(to_vec("text", readable)), r#""text""#);
    assert_eq!(text(to_vec(&u128::MAX, readable)), u128::MAX.to_string());
}

#[test]
fn raw_json_cannot_stand_for_an_entity_but_may_fill_a_kept_group() {
    let raw = RawValue::from_string(r#"{"sensitive":{"disabilityInfo":"ADHD"}}"#.into()).unwrap();
    let err = to_vec(&raw, readable).unwrap_err();
    assert!(err.to_string().contains("raw JSON value"), "{err}");
    let in_array = [raw.clone()];
    assert!(to_vec(&in_array[..], readable).is_err());

    #[derive(Serialize)]
    struct WithRaw {
        anagraphic: Box<RawValue>,
        sensitive: Box<RawValue>,
    }
    let doc = WithRaw {
        anagraphic: RawValue::from_string(r#"{"firstName":"Marco"}"#.into()).unwrap(),
        sensitive: raw,
    };
    assert_eq!(
        text(to_vec(&doc, readable)),
        r#"{"anagraphic":{"firstName":"Marco"}}"#
    );
}

#[test]
fn keys_that_are_not_text_are_refused() {
    let by_pair = BTreeMap::from([((1, 2), "x")]);
    let err = to_vec(&by_pair, readable).unwrap_err();
    assert!(err.to_string().contains("object key"), "{err}");
}

#[test]
fn a_failing_value_fails_the_whole_document() {
    struct Broken;
    impl Serialize for Broken {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("the store went away"))
        }
    }
    let doc = BTreeMap::from([("anagraphic", Broken)]);
    let err = to_vec(&doc, readable).unwrap_err();
    assert!(err.to_string().contains("the store went away"));
    // A dropped member is never serialized, so it cannot fail.
    let doc = BTreeMap::from([("sensitive", Broken)]);
    assert_eq!(text(to_vec(&doc, readable)), "{}");
}

/// Any JSON value whose top-level object is not page-shaped.
fn document() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id"),
        Just("anagraphic"),
        Just("sensitive"),
        Just("createdAt"),
        Just("7"),
        Just("financial"),
    ]
    .prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z\"\\\\\u{e9}]{0,6}".prop_map(Value::from),
    ];
    let inner = leaf.prop_recursive(3, 24, 4, |v| {
        prop_oneof![
            prop::collection::vec(v.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,3}", v, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let entity = prop::collection::btree_map(key, inner.clone(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![
        entity.clone(),
        prop::collection::vec(prop_oneof![entity, inner.clone()], 0..4).prop_map(Value::from),
        inner,
    ]
}

proptest! {
    #[test]
    fn typed_filtering_is_byte_filtering(doc in document()) {
        let whole = serde_json::to_vec(&doc).unwrap();
        match (to_vec(&doc, readable), filter_document(&whole, readable)) {
            (Ok(typed), Ok(cut)) => prop_assert_eq!(typed, cut),
            (Err(_), Err(_)) => {}
            (typed, cut) => prop_assert!(false, "typed {:?} but bytes {:?}", typed, cut),
        }
    }
}
