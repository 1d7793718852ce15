//! Real-world message shapes, and any bytes at all.
#![allow(clippy::unwrap_used)] // test code

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::message::{escape, unescape};
use super::mllp::{MllpCodec, MllpError, MAX_FRAME};
use super::*;

/// An admission as English PAS feeds send it: the NHS number as one
/// repetition of PID-3 among local ones, names, a bed location.
const A01: &str = "MSH|^~\\&|PAS|RBD|BATON|DORSET|20261202083000||ADT^A01^ADT_A01|MSG00001|P|2.4|||AL|NE\r\
EVN|A01|20261202082500|||JSMITH^Smith^Jane\r\
PID|1||RBD1234567^^^RBD^MR~9434765919^^^NHS^NH||O'Brien^Mary^Anne^^Mrs||19410302|F|||1 High St^^Poole^^BH15 1AA\r\
PV1|1|I|W1^^12^POOLE||||C123^Jones^Alan|||MED||||19|||||V0001234^^^RBD^VN|||||||||||||||||||||||||20261202082000\r";

#[test]
fn an_english_pas_admission_reads_field_by_field() {
    let m = Message::parse(A01.as_bytes()).unwrap();
    assert_eq!(m.delimiters, Delimiters::default());
    assert_eq!(m.text("MSH", 9, 1).as_deref(), Some("ADT"));
    assert_eq!(m.text("MSH", 9, 2).as_deref(), Some("A01"));
    assert_eq!(m.text("MSH", 10, 1).as_deref(), Some("MSG00001"));
    assert_eq!(m.text("MSH", 12, 1).as_deref(), Some("2.4"));
    let pid = m.segment("PID").unwrap();
    let nhs = pid
        .field(3)
        .iter()
        .find(|r| r.text(4, 1, &m.delimiters).as_deref() == Some("NHS"))
        .and_then(|r| r.text(1, 1, &m.delimiters));
    assert_eq!(nhs.as_deref(), Some("9434765919"));
    assert_eq!(m.text("PID", 5, 1).as_deref(), Some("O'Brien"));
    assert_eq!(m.text("PID", 5, 2).as_deref(), Some("Mary"));
    assert_eq!(m.text("PID", 7, 1).as_deref(), Some("19410302"));
    assert_eq!(m.text("PV1", 3, 1).as_deref(), Some("W1"));
    assert_eq!(m.text("PV1", 3, 3).as_deref(), Some("12"));
    assert_eq!(m.text("PV1", 19, 1).as_deref(), Some("V0001234"));
    assert_eq!(m.text("PV1", 44, 1).as_deref(), Some("20261202082000"));
    assert_eq!(m.text("EVN", 5, 1).as_deref(), Some("JSMITH"));
    assert_eq!(m.text("PV1", 45, 1), None);
}

#[test]
fn segments_may_end_with_cr_lf_or_crlf() {
    for end in ["\r", "\n", "\r\n"] {
        let text = A01.replace('\r', end);
        let m = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(m.segments.len(), 4, "{end:?}");
        assert_eq!(m.text("PV1", 19, 1).as_deref(), Some("V0001234"));
    }
}

#[test]
fn the_separators_are_those_the_message_declares() {
    let text = "MSH#*!$@#PAS#RBD#BATON#X#20261202##ADT*A02#M2#P#2.5\rPID#1##111*222!9434765919***NHS*NH##Smith$Jr*Ann\r";
    let m = Message::parse(text.as_bytes()).unwrap();
    assert_eq!(m.delimiters.field, '#');
    assert_eq!(m.delimiters.component, '*');
    assert_eq!(m.delimiters.repetition, '!');
    assert_eq!(m.delimiters.escape, Some('$'));
    assert_eq!(m.delimiters.subcomponent, '@');
    assert_eq!(m.text("MSH", 9, 2).as_deref(), Some("A02"));
    assert_eq!(m.segment("PID").unwrap().field(3).len(), 2);
    // `$Jr` is not a complete escape: kept as sent.
    assert_eq!(m.text("PID", 5, 1).as_deref(), Some("Smith$Jr"));
}

#[test]
fn escape_sequences_are_undone_and_made() {
    let d = Delimiters::default();
    assert_eq!(
        unescape("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", &d),
        "a|b^c&d~e\\f"
    );
    assert_eq!(unescape("line\\.br\\next", &d), "line\nnext");
    assert_eq!(unescape("\\XC3A9\\", &d), "é");
    assert_eq!(unescape("\\H\\bold\\N\\", &d), "bold");
    assert_eq!(unescape("\\Zunknown\\", &d), "\\Zunknown\\");
    assert_eq!(unescape("half\\open", &d), "half\\open");
    assert_eq!(
        escape("a|b^c&d~e\\f\ng", &d),
        "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g"
    );
}

#[test]
fn an_absent_field_differs_from_one_sent_as_the_explicit_null() {
    let text = "MSH|^~\\&|PAS|RBD|||||ADT^A08|M3|P|2.4\rPID|1||9434765919^^^NHS^NH||\"\"||\r";
    let m = Message::parse(text.as_bytes()).unwrap();
    let pid = m.segment("PID").unwrap();
    assert_eq!(*pid.raw_field(5), Field::Null);
    assert_eq!(*pid.raw_field(7), Field::Absent);
    assert_eq!(*pid.raw_field(40), Field::Absent);
}

#[test]
fn what_is_not_a_message_is_said_why() {
    assert_eq!(Message::parse(b""), Err(ParseError::NoHeader));
    assert_eq!(Message::parse(b"PID|1\r"), Err(ParseError::NoHeader));
    assert_eq!(Message::parse(&[0xff, 0xfe]), Err(ParseError::NotText));
    assert_eq!(Message::parse(b"MSH|"), Err(ParseError::BadDelimiters));
    assert_eq!(
        Message::parse(b"MSH|^^\\&|x\r"),
        Err(ParseError::BadDelimiters)
    );
    assert_eq!(
        Message::parse(b"MSH|^~\\&|x\rpid|1\r"),
        Err(ParseError::BadSegmentName(2))
    );
}

#[test]
fn an_acknowledgement_echoes_the_control_id_and_says_what_went_wrong() {
    let m = Message::parse(A01.as_bytes()).unwrap();
    let accepted = ack(
        Some(&m),
        AckCode::Accept,
        None,
        "DORSET",
        "20261202083001",
        "ACK1",
    );
    let read = Message::parse(accepted.as_bytes()).unwrap();
    assert_eq!(read.text("MSH", 9, 1).as_deref(), Some("ACK"));
    assert_eq!(read.text("MSH", 9, 2).as_deref(), Some("A01"));
    assert_eq!(read.text("MSH", 5, 1).as_deref(), Some("PAS"));
    assert_eq!(read.text("MSH", 6, 1).as_deref(), Some("RBD"));
    assert_eq!(read.text("MSA", 1, 1).as_deref(), Some("AA"));
    assert_eq!(read.text("MSA", 2, 1).as_deref(), Some("MSG00001"));
    let error = AckError {
        code: "103",
        text: "unknown ward W9|x".to_owned(),
    };
    let refused = ack(
        Some(&m),
        AckCode::Error,
        Some(&error),
        "DORSET",
        "20261202083001",
        "ACK2",
    );
    let read = Message::parse(refused.as_bytes()).unwrap();
    assert_eq!(read.text("MSA", 1, 1).as_deref(), Some("AE"));
    assert_eq!(read.text("ERR", 3, 1).as_deref(), Some("103"));
    assert_eq!(read.text("ERR", 3, 2).as_deref(), Some("unknown ward W9|x"));
    let rejected = ack(
        None,
        AckCode::Reject,
        None,
        "DORSET",
        "20261202083001",
        "ACK3",
    );
    assert!(rejected.contains("MSA|AR|"), "{rejected}");
}

#[test]
fn the_answer_to_a_message_declaring_no_escape_character_reads_back() {
    // Found by `cargo fuzz` (.ci/fuzz): MSH-2 `^~` declares no escape
    // character, and the ACK wrote `^~&`, which reads `&` as the escape and
    // again as the default subcomponent separator: an unreadable answer.
    let m = Message::parse(b"MSH|^~|PAS|RBH|BATON|DORSET|20261202||ADT^A01|M1|P|2.4\r").unwrap();
    assert_eq!(m.delimiters.escape, None);
    let answer = ack(
        Some(&m),
        AckCode::Accept,
        None,
        "BATON",
        "20261202000000",
        "A1",
    );
    let back = Message::parse(answer.as_bytes()).unwrap();
    assert_eq!(back.delimiters, m.delimiters);
    assert_eq!(back.text("MSA", 1, 1).as_deref(), Some("AA"));
    assert_eq!(back.text("MSA", 2, 1).as_deref(), Some("M1"));
}

#[test]
fn mllp_frames_are_found_across_reads_and_garbage_before_them_is_skipped() {
    let mut codec = MllpCodec;
    let mut wire = BytesMut::new();
    codec.encode(b"one".as_slice(), &mut wire).unwrap();
    codec.encode(b"two".as_slice(), &mut wire).unwrap();
    let mut input = BytesMut::from(&b"noise"[..]);
    input.extend_from_slice(&wire[..4]);
    assert!(codec.decode(&mut input).unwrap().is_none());
    input.extend_from_slice(&wire[4..]);
    assert_eq!(&codec.decode(&mut input).unwrap().unwrap()[..], b"one");
    assert_eq!(&codec.decode(&mut input).unwrap().unwrap()[..], b"two");
    assert!(codec.decode(&mut input).unwrap().is_none());
}

#[test]
fn an_mllp_frame_that_never_ends_is_refused_at_the_limit() {
    let mut codec = MllpCodec;
    let mut input = BytesMut::from(&[0x0B][..]);
    input.extend_from_slice(&vec![b'a'; MAX_FRAME]);
    assert!(codec.decode(&mut input).unwrap().is_none());
    input.extend_from_slice(b"aaaa");
    assert!(matches!(codec.decode(&mut input), Err(MllpError::TooLong)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_are_a_message_or_a_reason_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Message::parse(&bytes);
        let mut with_header = b"MSH|^~\\&|".to_vec();
        with_header.extend_from_slice(&bytes);
        if let Ok(m) = Message::parse(&with_header) {
            for segment in &m.segments {
                for n in 0..30 {
                    for rep in segment.field(n) {
                        let _ = rep.text(1, 1, &m.delimiters);
                        let _ = rep.text(5, 3, &m.delimiters);
                    }
                }
            }
            let answer = ack(Some(&m), AckCode::Error, None, "X", "20260101000000", "1");
            prop_assert!(Message::parse(answer.as_bytes()).is_ok(), "{answer:?}");
        }
    }

    #[test]
    fn any_bytes_split_anyhow_are_framed_without_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        let mut codec = MllpCodec;
        let cut = cut.min(bytes.len());
        let mut input = BytesMut::from(&bytes[..cut]);
        while let Ok(Some(_)) = codec.decode(&mut input) {}
        input.extend_from_slice(&bytes[cut..]);
        while let Ok(Some(_)) = codec.decode(&mut input) {}
    }

    #[test]
    fn text_escaped_reads_back_as_it_was(text in "\\PC{0,60}") {
        let d = Delimiters::default();
        prop_assert_eq!(unescape(&escape(&text, &d), &d), text);
    }
}

mod adt_fields {
    use super::super::adt::{destination, header, interpret, timestamp, Adt};
    use super::*;
    use chrono::TimeZone;
    use domain::values::Destination;

    fn now() -> domain::values::Instant {
        chrono::Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap()
    }

    #[test]
    fn a_timestamp_without_an_offset_is_english_local_time() {
        // 1 December: GMT. 1 July: BST, an hour ahead of UTC.
        assert_eq!(
            timestamp("202612010820"),
            Some(chrono::Utc.with_ymd_and_hms(2026, 12, 1, 8, 20, 0).unwrap())
        );
        assert_eq!(
            timestamp("20260701082000"),
            Some(chrono::Utc.with_ymd_and_hms(2026, 7, 1, 7, 20, 0).unwrap())
        );
        assert_eq!(
            timestamp("20260701082000.1234+0000"),
            Some(chrono::Utc.with_ymd_and_hms(2026, 7, 1, 8, 20, 0).unwrap())
        );
        assert_eq!(
            timestamp("20260701082000-0130"),
            Some(chrono::Utc.with_ymd_and_hms(2026, 7, 1, 9, 50, 0).unwrap())
        );
        assert_eq!(
            timestamp("20261201"),
            Some(chrono::Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap())
        );
        for bad in [
            "",
            "2026",
            "202612010820x",
            "20261301000000",
            "20260701+01",
            "20260701+0a00",
        ] {
            assert_eq!(timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn dispositions_map_to_destinations_and_anything_else_is_other() {
        assert_eq!(destination(Some("19")), Destination::UsualResidence);
        assert_eq!(destination(Some(" 79 ")), Destination::Died);
        assert_eq!(destination(Some("88")), Destination::Hospice);
        assert_eq!(destination(Some("51")), Destination::OtherAcuteTrust);
        assert_eq!(destination(Some("54")), Destination::CareHomeNew);
        assert_eq!(
            destination(Some("care_home_usual")),
            Destination::CareHomeUsual
        );
        assert_eq!(destination(Some("XX")), Destination::Other);
        assert_eq!(destination(None), Destination::Other);
    }

    #[test]
    fn an_admission_reads_the_nhs_repetition_names_location_and_times() {
        let m = Message::parse(A01.as_bytes()).unwrap();
        let h = header(&m).unwrap();
        assert_eq!(
            (
                h.application.as_str(),
                h.facility.as_str(),
                h.control_id.as_str(),
                h.trigger.as_str()
            ),
            ("PAS", "RBD", "MSG00001", "A01")
        );
        assert_eq!(h.operator.as_deref(), Some("JSMITH"));
        let Adt::Admit {
            visit,
            patient,
            location,
            at,
        } = interpret(&m, &h.trigger, now()).unwrap()
        else {
            panic!("not an admission");
        };
        assert_eq!(visit.as_str(), "V0001234");
        assert_eq!(patient.nhs_number.digits(), "9434765919");
        assert_eq!(patient.family_name.as_str(), "O'Brien");
        assert_eq!(
            (location.point_of_care.as_str(), location.bed.as_str()),
            ("W1", "12")
        );
        assert_eq!(
            at,
            chrono::Utc.with_ymd_and_hms(2026, 12, 2, 8, 20, 0).unwrap()
        );
    }

    #[test]
    fn a_missing_nhs_number_or_visit_is_error_101_naming_the_field() {
        let no_nhs = A01.replace("~9434765919^^^NHS^NH", "");
        let m = Message::parse(no_nhs.as_bytes()).unwrap();
        let error = interpret(&m, "A01", now()).unwrap_err();
        assert_eq!(error.code, "101");
        assert!(error.text.contains("PID-3"), "{}", error.text);
        let no_visit = A01.replace("V0001234^^^RBD^VN", "");
        let m = Message::parse(no_visit.as_bytes()).unwrap();
        let error = interpret(&m, "A01", now()).unwrap_err();
        assert!(error.text.contains("PV1-19"), "{}", error.text);
        let bad_nhs = A01.replace("9434765919", "9434765918");
        let m = Message::parse(bad_nhs.as_bytes()).unwrap();
        assert_eq!(interpret(&m, "A01", now()).unwrap_err().code, "102");
    }

    #[test]
    fn another_message_type_or_no_control_id_is_refused_at_the_header() {
        let oru = A01.replace("ADT^A01^ADT_A01", "ORU^R01");
        assert_eq!(
            header(&Message::parse(oru.as_bytes()).unwrap())
                .unwrap_err()
                .code,
            "200"
        );
        for no_id in ["", "\"\"", "\"\"^X"] {
            // `""` (found by cargo fuzz as a component) is the null.
            let message = A01.replace("MSG00001", no_id);
            assert_eq!(
                header(&Message::parse(message.as_bytes()).unwrap())
                    .unwrap_err()
                    .code,
                "101",
                "{no_id}"
            );
        }
    }

    #[test]
    fn other_events_are_ignored() {
        let m = Message::parse(A01.as_bytes()).unwrap();
        for trigger in ["A04", "A05", "A28", "A31"] {
            assert_eq!(interpret(&m, trigger, now()).unwrap(), Adt::Ignored);
        }
    }

    proptest! {
        #[test]
        fn any_bytes_are_interpreted_or_refused_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(m) = Message::parse(&bytes) {
                if let Ok(h) = header(&m) {
                    let _ = interpret(&m, &h.trigger, now());
                }
            }
        }
    }
}
