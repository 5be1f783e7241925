//! Tests of the TwiML model: round trips, the exact documents written, escaping, Twilio's own
//! examples, what is refused and why, and property tests that nothing panics.

use super::parse::trim_xml;
use super::*;

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

fn round_trip(response: &Response) {
    let xml = response.to_xml();
    assert_eq!(parse(&xml).as_ref(), Ok(response), "{xml}");
}

fn err(xml: &str) -> TwimlError {
    match parse(xml) {
        Ok(r) => panic!("parsed {xml:?} as {r:?}"),
        Err(e) => e,
    }
}

/// Every verb, every attribute set.
fn everything() -> Response {
    Response::new()
        .verb(Say {
            text: "Welcome to Acme".into(),
            voice: Some("Polly.Joanna".into()),
            language: Some("en-US".into()),
            loop_: Some(2),
        })
        .verb(Play {
            url: "https://cdn.example/hold.mp3".into(),
            loop_: Some(0),
        })
        .pause(3)
        .verb(Enqueue {
            name: "support".into(),
            action: Some("/twilio/queue-exit".into()),
            method: Some("POST".into()),
            wait_url: Some("/twilio/wait".into()),
            wait_url_method: Some("POST".into()),
            max_queue_size: Some(5000),
        })
        .verb(Dial {
            action: Some("/twilio/dial-result?call=CA1&agent=a1".into()),
            method: Some("POST".into()),
            timeout: Some(20),
            answer_on_bridge: Some(true),
            caller_id: Some("+14155550100".into()),
            time_limit: Some(14400),
            record: Some("record-from-answer-dual".into()),
            recording_status_callback: Some("/twilio/recording?call=CA1".into()),
            recording_status_callback_method: Some("POST".into()),
            recording_status_callback_event: Some("completed".into()),
            nouns: vec![
                DialNoun::Client(Client {
                    identity: "agent-alice".into(),
                    status_callback: Some("/twilio/agent-leg".into()),
                    status_callback_event: Some("answered completed".into()),
                    status_callback_method: Some("POST".into()),
                    parameters: vec![
                        ("CallSid".into(), "CA1".into()),
                        ("Queue".into(), "support".into()),
                    ],
                }),
                DialNoun::Number(Number {
                    number: "+14155550199".into(),
                    status_callback: Some("/twilio/number-leg".into()),
                    status_callback_event: Some("completed".into()),
                }),
                DialNoun::Queue {
                    name: "support".into(),
                },
            ],
        })
        .verb(Gather {
            input: Some("dtmf".into()),
            num_digits: Some(1),
            action: Some("/twilio/callback-choice".into()),
            method: Some("POST".into()),
            timeout: Some(5),
            finish_on_key: Some(String::new()),
            children: vec![
                Say::new("Press 1 to be called back.").into(),
                Play::new("https://cdn.example/beep.mp3").into(),
                GatherChild::Pause { length: 2 },
            ],
        })
        .verb(Verb::Redirect {
            url: "/twilio/wait?n=2".into(),
            method: Some("GET".into()),
        })
        .leave()
        .hangup()
        .verb(Record {
            action: Some("/twilio/voicemail".into()),
            max_length: Some(120),
            play_beep: Some(false),
            transcribe: Some(true),
            finish_on_key: Some("#".into()),
        })
        .reject()
}

/// Every verb, no optional attribute set.
fn bare() -> Response {
    Response::new()
        .say("Hi")
        .play("https://cdn.example/hold.mp3")
        .pause(1)
        .verb(Enqueue::new("support"))
        .verb(Dial {
            nouns: vec![Client::new("bob").into()],
            ..Dial::default()
        })
        .verb(Gather::default())
        .redirect("/twilio/wait")
        .leave()
        .hangup()
        .verb(Record::default())
        .reject()
}

#[test]
fn every_verb_round_trips() {
    round_trip(&everything());
    round_trip(&bare());
    round_trip(&Response::new());
    for verb in everything().verbs.into_iter().chain(bare().verbs) {
        round_trip(&Response { verbs: vec![verb] });
    }
}

#[test]
fn writes_the_expected_document() {
    let xml = Response::new()
        .say("Hello")
        .verb(Enqueue {
            wait_url: Some("/twilio/wait".into()),
            action: Some("/twilio/queue-exit".into()),
            ..Enqueue::new("support")
        })
        .to_xml();
    assert_eq!(
        xml,
        format!(
            "{DECL}<Response><Say>Hello</Say>\
                 <Enqueue action=\"/twilio/queue-exit\" waitUrl=\"/twilio/wait\">support</Enqueue>\
                 </Response>"
        )
    );
    assert_eq!(Response::new().to_xml(), format!("{DECL}<Response/>"));
    let dial = Response::new()
        .verb(Dial {
            answer_on_bridge: Some(true),
            nouns: vec![Client {
                parameters: vec![("k".into(), "v".into())],
                ..Client::new("alice")
            }
            .into()],
            ..Dial::default()
        })
        .to_xml();
    assert!(
        dial.ends_with(
            "<Dial answerOnBridge=\"true\"><Client><Identity>alice</Identity>\
                 <Parameter name=\"k\" value=\"v\"/></Client></Dial></Response>"
        ),
        "{dial}"
    );
}

#[test]
fn escapes_caller_controlled_text_and_attributes() {
    let nasty = r#"<&>"' </Say><Hangup/> &amp; ]]>"#;
    let response = Response::new()
        .verb(Say {
            text: nasty.into(),
            voice: Some(nasty.into()),
            language: Some("a\"b'c".into()),
            loop_: None,
        })
        .verb(Dial {
            action: Some("/r?a=1&b=<2>".into()),
            nouns: vec![Client {
                parameters: vec![(nasty.into(), nasty.into())],
                ..Client::new(nasty)
            }
            .into()],
            ..Dial::default()
        });
    let xml = response.to_xml();
    assert!(!xml.contains("<&>"), "{xml}");
    assert!(!xml.contains("</Say><Hangup/>"), "{xml}");
    assert!(xml.contains("&lt;&amp;&gt;"), "{xml}");
    assert!(xml.contains("a&quot;b&apos;c"), "{xml}");
    assert!(xml.contains("/r?a=1&amp;b=&lt;2&gt;"), "{xml}");
    round_trip(&response);
}

#[test]
fn whitespace_in_attributes_and_cr_in_text_survive() {
    let response = Response::new()
        .verb(Say {
            text: "line one\r\nline two\ttab".into(),
            voice: Some("a\tb\nc\r\nd".into()),
            ..Say::default()
        })
        .verb(Dial {
            nouns: vec![Client {
                parameters: vec![("multi".into(), " spaced\nvalue ".into())],
                ..Client::new("x")
            }
            .into()],
            ..Dial::default()
        });
    let xml = response.to_xml();
    assert!(xml.contains("a&#9;b&#10;c&#13;&#10;d"), "{xml}");
    round_trip(&response);
}

#[test]
fn characters_xml_cannot_carry_are_dropped() {
    let response = Response::new().say("a\u{0}b\u{1b}c\u{fffe}d");
    let xml = response.to_xml();
    assert!(!xml.contains('\u{0}') && !xml.contains('\u{1b}'), "{xml:?}");
    assert_eq!(parse(&xml), Ok(Response::new().say("abcd")));
}

#[test]
fn non_ascii_text_round_trips() {
    round_trip(&Response::new().say("Vous êtes le numéro 3 — 日本語 🎧"));
}

#[test]
fn twilio_docs_enqueue_with_wait_url() {
    // From Twilio's <Enqueue> documentation.
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <Enqueue waitUrl="wait-music.xml">support</Enqueue>
</Response>"#;
    assert_eq!(
        parse(xml),
        Ok(Response {
            verbs: vec![Verb::Enqueue(Enqueue {
                wait_url: Some("wait-music.xml".into()),
                ..Enqueue::new("support")
            })]
        })
    );
}

#[test]
fn twilio_docs_client_with_identity_and_parameters() {
    // From Twilio's <Client> documentation (note the space before `=`).
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Dial>
    <Client>
      <Identity>user_jane</Identity>
      <Parameter name="FirstName" value ="Jane"/>
      <Parameter name="LastName" value ="Doe" />
    </Client>
  </Dial>
</Response>"#;
    let expected = Response::new().verb(Dial {
        nouns: vec![Client {
            parameters: vec![
                ("FirstName".into(), "Jane".into()),
                ("LastName".into(), "Doe".into()),
            ],
            ..Client::new("user_jane")
        }
        .into()],
        ..Dial::default()
    });
    assert_eq!(parse(xml), Ok(expected));
}

#[test]
fn twilio_docs_gather_and_short_forms() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <Gather action="/process_gather.php" method="GET">
        <Say>Please enter your account number,
        followed by the pound sign</Say>
    </Gather>
    <Say>We didn't receive any input. Goodbye!</Say>
    <!-- a comment -->
    <Dial timeout="10">415-123-4567</Dial>
    <Dial><Client>jenny</Client></Dial>
    <Pause/>
</Response>
"#;
    let expected = Response::new()
        .verb(Gather {
            action: Some("/process_gather.php".into()),
            method: Some("GET".into()),
            children: vec![Say::new(
                "Please enter your account number,\n        followed by the pound sign",
            )
            .into()],
            ..Gather::default()
        })
        .say("We didn't receive any input. Goodbye!")
        .verb(Dial {
            timeout: Some(10),
            nouns: vec![Number::new("415-123-4567").into()],
            ..Dial::default()
        })
        .verb(Dial {
            nouns: vec![Client::new("jenny").into()],
            ..Dial::default()
        })
        .pause(1);
    assert_eq!(parse(xml), Ok(expected));
}

/// Twilio's example of recording a `<Dial>`, and the recording attributes written back.
#[test]
fn dial_recording_attributes_round_trip() {
    let xml = r#"<Response><Dial record="record-from-ringing-dual"
            recordingStatusCallback="https://q.example/twilio/recording?call=CA1"
            recordingStatusCallbackMethod="POST"
            recordingStatusCallbackEvent="in-progress completed absent">+15558675310</Dial></Response>"#;
    let expected = Response::new().verb(Dial {
        record: Some("record-from-ringing-dual".into()),
        recording_status_callback: Some("https://q.example/twilio/recording?call=CA1".into()),
        recording_status_callback_method: Some("POST".into()),
        recording_status_callback_event: Some("in-progress completed absent".into()),
        nouns: vec![Number::new("+15558675310").into()],
        ..Dial::default()
    });
    assert_eq!(parse(xml).as_ref(), Ok(&expected));
    assert_eq!(
        expected.to_xml(),
        format!(
            "{DECL}<Response><Dial record=\"record-from-ringing-dual\" \
             recordingStatusCallback=\"https://q.example/twilio/recording?call=CA1\" \
             recordingStatusCallbackMethod=\"POST\" \
             recordingStatusCallbackEvent=\"in-progress completed absent\">\
             <Number>+15558675310</Number></Dial></Response>"
        )
    );
    round_trip(&expected);
}

#[test]
fn attributes_are_parsed_and_unknown_ones_ignored() {
    let xml = r#"<Response>
            <Record action="/vm" maxLength="30" playBeep="TRUE" transcribe="false"
                    finishOnKey="*" trim="trim-silence"/>
            <Dial answerOnBridge="false" timeLimit="60" ringTone="us"><Number>+1</Number></Dial>
            <Say loop="0" voice='alice'>a &amp; b &#x263A; &#65;<![CDATA[ <raw> ]]></Say>
        </Response>"#;
    let parsed = parse(xml);
    assert_eq!(
        parsed,
        Ok(Response::new()
            .verb(Record {
                action: Some("/vm".into()),
                max_length: Some(30),
                play_beep: Some(true),
                transcribe: Some(false),
                finish_on_key: Some("*".into()),
            })
            .verb(Dial {
                answer_on_bridge: Some(false),
                time_limit: Some(60),
                nouns: vec![Number::new("+1").into()],
                ..Dial::default()
            })
            .verb(Say {
                loop_: Some(0),
                voice: Some("alice".into()),
                ..Say::new("a & b ☺ A <raw>")
            }))
    );
}

#[test]
fn bad_numbers_and_booleans_name_element_and_attribute() {
    let cases = [
        (
            r#"<Response><Pause length="two"/></Response>"#,
            "Pause",
            "length",
        ),
        (
            r#"<Response><Pause length="-1"/></Response>"#,
            "Pause",
            "length",
        ),
        (
            r#"<Response><Pause length="+1"/></Response>"#,
            "Pause",
            "length",
        ),
        (
            r#"<Response><Pause length=""/></Response>"#,
            "Pause",
            "length",
        ),
        (
            r#"<Response><Say loop="1.5">x</Say></Response>"#,
            "Say",
            "loop",
        ),
        (
            r#"<Response><Enqueue maxQueueSize="99999999999">q</Enqueue></Response>"#,
            "Enqueue",
            "maxQueueSize",
        ),
        (
            r#"<Response><Gather numDigits=" 1"/></Response>"#,
            "Gather",
            "numDigits",
        ),
        (
            r#"<Response><Dial answerOnBridge="yes"><Number>1</Number></Dial></Response>"#,
            "Dial",
            "answerOnBridge",
        ),
        (
            r#"<Response><Record playBeep="1"/></Response>"#,
            "Record",
            "playBeep",
        ),
    ];
    for (xml, element, attribute) in cases {
        match err(xml) {
            TwimlError::InvalidAttribute {
                element: e,
                attribute: a,
                ..
            } => assert_eq!((e.as_str(), a.as_str()), (element, attribute), "{xml}"),
            other => panic!("{xml}: {other:?}"),
        }
    }
    let message = err(r#"<Response><Pause length="two"/></Response>"#).to_string();
    assert!(
        message.contains("<Pause>") && message.contains("length"),
        "{message}"
    );
}

#[test]
fn bad_nesting_is_refused() {
    let not_allowed = |xml: &str, parent: &str, element: &str| {
        assert_eq!(
            err(xml),
            TwimlError::NotAllowed {
                parent: parent.into(),
                element: element.into()
            },
            "{xml}"
        );
    };
    not_allowed(
        "<Response><Gather><Dial><Number>1</Number></Dial></Gather></Response>",
        "Gather",
        "Dial",
    );
    not_allowed(
        "<Response><Gather><Gather/></Gather></Response>",
        "Gather",
        "Gather",
    );
    not_allowed(
        "<Response><Dial><Enqueue>q</Enqueue></Dial></Response>",
        "Dial",
        "Enqueue",
    );
    not_allowed(
        "<Response><Number>1</Number></Response>",
        "Response",
        "Number",
    );
    not_allowed("<Response><Response/></Response>", "Response", "Response");
    not_allowed(
        "<Response><Say><Play>u</Play></Say></Response>",
        "Say",
        "Play",
    );
    not_allowed(
        "<Response><Dial><Client><Say>x</Say></Client></Dial></Response>",
        "Client",
        "Say",
    );
    not_allowed(
        "<Response><Hangup><Leave/></Hangup></Response>",
        "Hangup",
        "Leave",
    );
    assert_eq!(
        err("<Response><Dial><Client><Identity>a</Identity>b</Client></Dial></Response>"),
        TwimlError::Duplicate {
            parent: "Client".into(),
            element: "Identity".into()
        }
    );
}

#[test]
fn unknown_verbs_and_roots_are_refused() {
    assert_eq!(
        err("<Response><Connect/></Response>"),
        TwimlError::UnknownElement {
            parent: "Response".into(),
            element: "Connect".into()
        }
    );
    assert_eq!(
        err("<Response><say>lowercase</say></Response>"),
        TwimlError::UnknownElement {
            parent: "Response".into(),
            element: "say".into()
        }
    );
    assert_eq!(
        err("<Response><Say>Hi <break time=\"1s\"/></Say></Response>"),
        TwimlError::UnknownElement {
            parent: "Say".into(),
            element: "break".into()
        }
    );
    assert_eq!(
        err("<Dial><Number>1</Number></Dial>"),
        TwimlError::WrongRoot {
            found: "Dial".into()
        }
    );
    assert_eq!(
        err("<html><body/></html>"),
        TwimlError::WrongRoot {
            found: "html".into()
        }
    );
    assert_eq!(err(""), TwimlError::MissingRoot);
    assert_eq!(err(DECL), TwimlError::MissingRoot);
    assert_eq!(err("  <!-- only a comment -->  "), TwimlError::MissingRoot);
    assert!(matches!(err("hello"), TwimlError::Xml { .. }));
    assert!(matches!(
        err("<Response>stray text<Hangup/></Response>"),
        TwimlError::UnexpectedText { .. }
    ));
    assert!(matches!(
        err("<Response><Gather>press 1</Gather></Response>"),
        TwimlError::UnexpectedText { .. }
    ));
    assert_eq!(err("<Response/><Response/>"), TwimlError::TrailingContent);
    assert_eq!(err("<Response/>trailing"), TwimlError::TrailingContent);
}

#[test]
fn missing_required_content_is_refused() {
    let cases = [
        ("<Response><Enqueue/></Response>", "Enqueue"),
        ("<Response><Enqueue>   </Enqueue></Response>", "Enqueue"),
        ("<Response><Redirect/></Response>", "Redirect"),
        ("<Response><Dial/></Response>", "Dial"),
        ("<Response><Dial><Client/></Dial></Response>", "Client"),
        (
            "<Response><Dial><Number></Number></Dial></Response>",
            "Number",
        ),
        ("<Response><Dial><Queue/></Dial></Response>", "Queue"),
        (
            r#"<Response><Dial><Client>a<Parameter value="v"/></Client></Dial></Response>"#,
            "Parameter",
        ),
    ];
    for (xml, element) in cases {
        match err(xml) {
            TwimlError::Missing { element: e, .. } => assert_eq!(e, element, "{xml}"),
            other => panic!("{xml}: {other:?}"),
        }
    }
}

#[test]
fn twilio_limits_are_enforced() {
    let long_name = "q".repeat(MAX_QUEUE_NAME_CHARS + 1);
    assert!(matches!(
        parse(&format!(
            "<Response><Enqueue>{long_name}</Enqueue></Response>"
        )),
        Err(TwimlError::TooLong { .. })
    ));
    let ok_name = "é".repeat(MAX_QUEUE_NAME_CHARS);
    assert!(parse(&format!(
        "<Response><Enqueue>{ok_name}</Enqueue></Response>"
    ))
    .is_ok());
    assert!(matches!(
        err(r#"<Response><Enqueue maxQueueSize="5001">q</Enqueue></Response>"#),
        TwimlError::InvalidAttribute { .. }
    ));
    assert!(matches!(
        err(r#"<Response><Enqueue maxQueueSize="0">q</Enqueue></Response>"#),
        TwimlError::InvalidAttribute { .. }
    ));

    // 64 kB for a document, 4,000 characters inline.
    let big = Response::new().say("x".repeat(MAX_TWIML_BYTES));
    assert!(matches!(
        big.to_xml_checked(),
        Err(TwimlError::TooLarge { .. })
    ));
    assert!(matches!(
        parse(&big.to_xml()),
        Err(TwimlError::TooLarge { .. })
    ));
    let medium = Response::new().say("x".repeat(MAX_INLINE_TWIML_CHARS));
    assert!(medium.to_xml_checked().is_ok());
    assert!(matches!(
        medium.to_inline_xml(),
        Err(TwimlError::InlineTooLong { .. })
    ));
    assert_eq!(
        everything().to_inline_xml().as_deref(),
        Ok(everything().to_xml().as_str())
    );
    assert!(matches!(
        Response::new().verb(Enqueue::new("")).to_xml_checked(),
        Err(TwimlError::Missing { .. })
    ));
}

#[test]
fn malformed_xml_errors() {
    for xml in [
        "<",
        "<<<>>>",
        "<Response>",
        "<Response><Say>x</Response>",
        "<Response></Respons>",
        "</Response>",
        "<Response><Say>&nbsp;</Say></Response>",
        "<Response><Say>&#0;</Say></Response>",
        "<Response><Say>& </Say></Response>",
        r#"<Response><Say voice="a" voice="b">x</Say></Response>"#,
        r#"<Response><Say voice=a>x</Say></Response>"#,
        "<!DOCTYPE r [<!ENTITY x \"y\">]><Response><Say>&x;</Say></Response>",
        "<Response/><?xml version=\"1.0\"?>",
        " <?xml version=\"1.0\"?><Response/>",
        "<Response><!-- bad -- comment --></Response>",
    ] {
        assert!(parse(xml).is_err(), "{xml:?} parsed: {:?}", parse(xml));
    }
    // A BOM, a declaration and comments around the root are fine.
    assert_eq!(
        parse("\u{feff}<?xml version=\"1.0\"?><!-- c --><Response/><!-- d -->\n"),
        Ok(Response::new())
    );
}

mod properties {
    use super::*;
    use proptest::option::of;
    use proptest::prelude::*;

    /// Element text: anything but leading/trailing whitespace (which reading trims).
    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9<>&\"' \t\n;#éü日🎧-]{0,16}".prop_map(|s| trim_xml(&s).to_owned())
    }

    fn required_text() -> impl Strategy<Value = String> {
        text().prop_map(|s| if s.is_empty() { "x".to_owned() } else { s })
    }

    /// Attribute values keep everything, whitespace included.
    fn value() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9<>&\"' \t\r\n;#=?/éü日🎧-]{0,16}"
    }

    fn say() -> impl Strategy<Value = Say> {
        (text(), of(value()), of(value()), of(any::<u32>())).prop_map(
            |(text, voice, language, loop_)| Say {
                text,
                voice,
                language,
                loop_,
            },
        )
    }

    fn play() -> impl Strategy<Value = Play> {
        (text(), of(any::<u32>())).prop_map(|(url, loop_)| Play { url, loop_ })
    }

    fn noun() -> impl Strategy<Value = DialNoun> {
        prop_oneof![
            (
                required_text(),
                of(value()),
                of(value()),
                of(value()),
                prop::collection::vec(("[a-zA-Z ]{1,8}", value()), 0..3)
            )
                .prop_map(|(identity, cb, event, method, parameters)| {
                    DialNoun::Client(Client {
                        identity,
                        status_callback: cb,
                        status_callback_event: event,
                        status_callback_method: method,
                        parameters,
                    })
                }),
            (required_text(), of(value()), of(value())).prop_map(|(number, cb, event)| {
                DialNoun::Number(Number {
                    number,
                    status_callback: cb,
                    status_callback_event: event,
                })
            }),
            required_text().prop_map(|name| DialNoun::Queue { name }),
        ]
    }

    fn verb() -> impl Strategy<Value = Verb> {
        prop_oneof![
            say().prop_map(Verb::Say),
            play().prop_map(Verb::Play),
            any::<u32>().prop_map(|length| Verb::Pause { length }),
            (
                required_text(),
                of(value()),
                of(value()),
                of(value()),
                of(value()),
                of(1..=MAX_QUEUE_SIZE)
            )
                .prop_map(|(name, action, method, wait_url, wait_url_method, size)| {
                    Verb::Enqueue(Enqueue {
                        name,
                        action,
                        method,
                        wait_url,
                        wait_url_method,
                        max_queue_size: size,
                    })
                }),
            (
                (of(value()), of(value()), of(any::<u32>())),
                (of(any::<bool>()), of(value()), of(any::<u32>())),
                (of(value()), of(value()), of(value()), of(value())),
                prop::collection::vec(noun(), 1..4)
            )
                .prop_map(
                    |(
                        (action, method, timeout),
                        (bridge, caller_id, limit),
                        (record, rec_cb, rec_method, rec_event),
                        nouns,
                    )| {
                        Verb::Dial(Dial {
                            action,
                            method,
                            timeout,
                            answer_on_bridge: bridge,
                            caller_id,
                            time_limit: limit,
                            record,
                            recording_status_callback: rec_cb,
                            recording_status_callback_method: rec_method,
                            recording_status_callback_event: rec_event,
                            nouns,
                        })
                    }
                ),
            (
                (of(value()), of(any::<u32>()), of(value())),
                (of(value()), of(any::<u32>()), of(value())),
                prop::collection::vec(
                    prop_oneof![
                        say().prop_map(GatherChild::Say),
                        play().prop_map(GatherChild::Play),
                        any::<u32>().prop_map(|length| GatherChild::Pause { length }),
                    ],
                    0..4
                )
            )
                .prop_map(
                    |((input, num_digits, action), (method, timeout, finish), children)| {
                        Verb::Gather(Gather {
                            input,
                            num_digits,
                            action,
                            method,
                            timeout,
                            finish_on_key: finish,
                            children,
                        })
                    }
                ),
            (required_text(), of(value())).prop_map(|(url, method)| Verb::Redirect { url, method }),
            Just(Verb::Leave),
            Just(Verb::Hangup),
            (
                of(value()),
                of(any::<u32>()),
                of(any::<bool>()),
                of(any::<bool>()),
                of(value())
            )
                .prop_map(|(action, max_length, play_beep, transcribe, finish)| {
                    Verb::Record(Record {
                        action,
                        max_length,
                        play_beep,
                        transcribe,
                        finish_on_key: finish,
                    })
                }),
            Just(Verb::Reject),
        ]
    }

    proptest! {
        #[test]
        fn round_trip_any_valid_response(verbs in prop::collection::vec(verb(), 0..6)) {
            let response = Response { verbs };
            prop_assert_eq!(response.validate(), Ok(()));
            prop_assert_eq!(parse(&response.to_xml()), Ok(response));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = parse(&s);
        }

        #[test]
        fn xml_like_garbage_never_panics(
            body in "([<>/=\"' &;#!?\\[\\]-]|Response|Say|Dial|Gather|Client|Identity|Parameter|Pause|length|loop|name|value|CDATA|amp|x|1){0,40}"
        ) {
            let _ = parse(&body);
            let _ = parse(&format!("<Response>{body}</Response>"));
            let _ = parse(&format!("<Response><Dial>{body}</Dial></Response>"));
        }

        #[test]
        fn mutated_documents_never_panic(cut in 0usize..2000, byte in any::<u8>()) {
            let xml = super::everything().to_xml();
            let mut bytes = xml.into_bytes();
            let at = cut % bytes.len();
            bytes[at] = byte;
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            let _ = parse(&mutated);
            let _ = parse(mutated.get(..cut).unwrap_or(&mutated));
        }
    }
}
