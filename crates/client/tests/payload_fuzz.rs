//! The payload parser takes whatever arrives at a receiver: random bytes and mangled
//! deliveries are refused with an error, never a panic, and real deliveries parse.

use proptest::prelude::*;

use lockstep_client::Payload;

const DELIVERY: &str = concat!(
    r#"{"secret":"s","instance":{"id":"shop","name":"Größe 🚀","url""#,
    r#":"https://a.b","attributes":{"x":[1,{"y":null}]}},"parent_lo"#,
    r#"g":1234,"lock":"lsl_abc","release":{"tag":"v2.4.1","zero_dow"#,
    r#"ntime":true},"event":"before_release_complete","reason":"x"}"#,
);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_never_panic_the_parser(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = Payload::from_slice(&bytes);
    }

    #[test]
    fn a_delivery_with_bytes_changed_or_cut_never_panics(
        cut in 0..DELIVERY.len(),
        at in 0..DELIVERY.len(),
        byte in any::<u8>(),
    ) {
        let mut bytes = DELIVERY.as_bytes().to_vec();
        bytes[at] = byte;
        let _ = Payload::from_slice(&bytes);
        let _ = Payload::from_slice(&DELIVERY.as_bytes()[..cut]);
    }

    #[test]
    fn unknown_fields_anywhere_are_tolerated(name in "[a-z_]{1,12}", value in any::<i64>()) {
        let known = [
            "secret", "instance", "parent_log", "lock", "release", "event", "reason", "tag",
            "zero_downtime",
        ];
        prop_assume!(!known.contains(&name.as_str()));
        let mut json: serde_json::Value = serde_json::from_str(DELIVERY).unwrap();
        json[&name] = serde_json::json!(value);
        json["release"][&name] = serde_json::json!(value);
        let parsed = Payload::from_slice(&serde_json::to_vec(&json).unwrap());
        prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
    }
}

#[test]
fn a_real_delivery_parses_with_its_lock_and_log() {
    let payload = Payload::from_slice(DELIVERY.as_bytes()).unwrap();
    assert_eq!(payload.parent_log, 1234);
    assert_eq!(payload.lock.as_deref(), Some("lsl_abc"));
}
