//! Regression tests for issue 6 (hardening the client core), one per defect.

use std::time::Duration;

use super::*;
use crate::config::{SaslConfig, SaslMechanism};
use crate::protocol::messages::produce_request::TopicProduceData;
use crate::protocol::messages::SaslHandshakeResponse;

/// The client-first-message a SCRAM client writes first, on a fresh client.
fn first_scram_message(config: ClientConfig) -> Vec<u8> {
    let mut t = Harness::new(ClientConfig {
        sasl: Some(SaslConfig {
            mechanism: SaslMechanism::ScramSha256,
            username: "u".into(),
            password: "p".into(),
        }),
        ..config
    });
    t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    let (_, h, body) = &w[0];
    assert!(matches!(body, RequestBody::SaslHandshake(_)), "{body:?}");
    let ok = SaslHandshakeResponse {
        mechanisms: vec!["SCRAM-SHA-256".into()],
        ..Default::default()
    };
    t.reply(conn(0), h, ResponseBody::SaslHandshake(ok));
    match &t.written()[..] {
        [(_, _, RequestBody::SaslAuthenticate(a))] => a.auth_bytes.to_vec(),
        other => panic!("{other:?}"),
    }
}

/// Item 2: every default client has its own randomness (SCRAM nonces, jitter); a fixed
/// seed still replays.
#[test]
fn two_default_clients_draw_different_scram_nonces() {
    let default = || ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:9092").unwrap()),
        broker_version: BrokerVersion::new(2, 8, 0),
        ..ClientConfig::default()
    };
    let a = first_scram_message(default());
    let b = first_scram_message(default());
    assert!(
        a.starts_with(b"n,,n=u,r="),
        "{}",
        String::from_utf8_lossy(&a)
    );
    assert_ne!(a, b, "two default clients drew the same nonce");
    // A fixed seed gives the same nonce (simulations replay).
    let seeded = || first_scram_message(modern());
    assert_eq!(seeded(), seeded());
}

/// Item 2: reconnect jitter differs between default clients too.
#[test]
fn two_default_clients_draw_different_reconnect_jitter() {
    let schedule = || {
        let mut t = Harness::new(ClientConfig {
            bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:9092").unwrap()),
            ..ClientConfig::default()
        });
        let t0 = t.now;
        t.client.update_cluster(t.now);
        let mut attempts = Vec::new();
        for _ in 0..6 {
            for io in t.ios() {
                if let Io::Connect { conn, .. } = io {
                    attempts.push(t.now - t0);
                    let refused = TransportError::new(TransportErrorKind::Refused, "refused");
                    t.client.handle_connect_failed(t.now, conn, refused);
                }
            }
            t.advance_to_timeout();
        }
        attempts
    };
    let a = schedule();
    assert!(a.len() >= 3, "{a:?}");
    assert_ne!(a, schedule());
}

/// Drives a connection through ApiVersions and returns what it wrote after it (or, with
/// no probe, its first request).
fn first_request_versions(t: &mut Harness, c: ConnectionHandle) -> Vec<(i16, i16)> {
    t.connect(c);
    key_version(&t.written())
}

/// Item 3: a connection closed while negotiating (a broker restarting) is an ordinary
/// failure: the next connection asks for the API versions again.
#[test]
fn a_closure_while_negotiating_does_not_pin_the_broker_to_0_9() {
    let mut t = Harness::new(modern());
    let op = t.client.update_cluster(t.now);
    t.ios();
    assert_eq!(first_request_versions(&mut t, conn(0)), vec![(18, 3)]);
    t.client.handle_closed(t.now, conn(0), None);
    assert!(t.client.no_probe.is_empty());
    // Reconnects after the backoff, asking again.
    for _ in 0..10 {
        if !t.ios().is_empty() {
            break;
        }
        t.advance_to_timeout();
    }
    t.connect(conn(1));
    let w = t.negotiate();
    assert_eq!(key_version(&w), vec![(3, ApiKey::Metadata.max_version())]);
    t.reply(conn(1), &w[0].1, metadata(&[(1, "k1")], &[]));
    let done: Vec<Event> = t
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Done { .. }))
        .collect();
    assert!(matches!(&done[..], [Event::Done { op: o, result: Ok(_) }] if *o == op));
}

/// Item 3: a broker silent on ApiVersions falls back to 0.9's table, but not for ever:
/// after `api_version_fallback` the client asks again.
#[test]
fn a_silent_broker_is_asked_again_after_api_version_fallback() {
    let fallback = Duration::from_secs(60);
    let mut t = Harness::new(ClientConfig {
        api_version_fallback: fallback,
        ..modern()
    });
    let t0 = t.now;
    t.client.update_cluster(t.now);
    t.ios();
    assert_eq!(first_request_versions(&mut t, conn(0)), vec![(18, 3)]);
    t.advance_to_timeout(); // ApiVersions unanswered, the connection open: pinned.
    t.ios();
    let w = {
        t.connect(conn(1));
        t.written()
    };
    assert_eq!(key_version(&w), vec![(3, 0)], "0.9's table");
    t.reply(conn(1), &w[0].1, metadata(&[(1, "k1")], &[]));
    t.events();
    // The broker goes away cleanly (no error) before the fallback runs out...
    t.now = t0 + fallback / 2;
    t.client.close(t.now);
    t.ios();
    t.client.update_cluster(t.now);
    assert!(matches!(&t.ios()[..], [Io::Connect { conn: c, .. }] if *c == conn(2)));
    assert_eq!(
        first_request_versions(&mut t, conn(2)),
        vec![(3, 0)],
        "still pinned"
    );
    // ...and after it, the client asks again.
    t.now = t0 + fallback + Duration::from_secs(10);
    t.client.close(t.now);
    t.ios();
    t.client.update_cluster(t.now);
    t.ios();
    assert_eq!(first_request_versions(&mut t, conn(3)), vec![(18, 3)]);
}

/// Item 3: a pinned broker that closes the connection on the 0.9 table's requests is
/// asked again at once (a modern broker drops old versions: Kafka 4 has no Metadata v0).
#[test]
fn a_pinned_broker_that_closes_on_old_versions_is_asked_again() {
    let mut t = Harness::new(modern());
    t.client.update_cluster(t.now);
    t.ios();
    assert_eq!(first_request_versions(&mut t, conn(0)), vec![(18, 3)]);
    t.advance_to_timeout();
    t.ios();
    assert_eq!(first_request_versions(&mut t, conn(1)), vec![(3, 0)]);
    let refused = TransportError::closed("the broker closed on Metadata v0");
    t.client.handle_closed(t.now, conn(1), Some(refused));
    assert!(t.client.no_probe.is_empty());
    for _ in 0..10 {
        if !t.ios().is_empty() {
            break;
        }
        t.advance_to_timeout();
    }
    assert_eq!(first_request_versions(&mut t, conn(2)), vec![(18, 3)]);
}

/// Item 9a: a partition listed twice fails at once instead of waiting for an answer that
/// can never complete the count.
#[test]
fn list_offsets_with_a_partition_listed_twice_fails_at_once() {
    let mut t = Harness::new(modern());
    let op = t
        .client
        .list_offsets(t.now, "t", vec![(0, -1), (1, -1), (0, -2)]);
    match &t.events()[..] {
        [Event::Done {
            op: o,
            result: Err(Error::Misuse(m)),
        }] => {
            assert_eq!(*o, op);
            assert!(m.contains("partition 0"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(t.ios().is_empty(), "nothing asked");
    assert_eq!(t.client.poll_timeout(), None);
}

/// Item 9b: a leader id missing from the broker list (metadata from a broker that lags,
/// a broker restarting) is retried after a metadata refresh, not a `Misuse`.
#[test]
fn a_leader_missing_from_the_broker_list_is_retried_after_a_refresh() {
    let mut t = Harness::new(modern());
    let op = t.client.list_offsets(t.now, "t", vec![(0, -1)]);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    // Partition 0's leader is broker 2, which the broker list does not have (yet).
    t.reply(conn(0), &w[0].1, metadata(&[(1, "k1")], &[("t", &[2])]));
    assert!(t.events().is_empty(), "waits, does not fail");
    let mut refreshed = false;
    for _ in 0..20 {
        t.ios();
        let w = t.written();
        if let Some((c, h, RequestBody::Metadata(_))) = w.first() {
            let c = *c;
            t.reply(c, h, metadata(&[(1, "k1"), (2, "k2")], &[("t", &[2])]));
            refreshed = true;
            break;
        }
        t.advance_to_timeout();
    }
    assert!(refreshed, "the metadata was refreshed");
    let ios = t.ios();
    let Some(Io::Connect { conn: c, host, .. }) = ios.first() else {
        panic!("{ios:?}")
    };
    assert_eq!(host, "k2");
    let c = *c;
    t.connect(c);
    let w = t.negotiate();
    assert!(matches!(w[0].2, RequestBody::ListOffsets(_)), "{w:?}");
    let offsets = ListOffsetsResponse {
        topics: vec![ListOffsetsTopicResponse {
            name: "t".into(),
            partitions: vec![ListOffsetsPartitionResponse {
                partition_index: 0,
                offset: 42,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    t.reply(c, &w[0].1, ResponseBody::ListOffsets(offsets));
    match &t.events()[..] {
        [Event::Done {
            op: o,
            result: Ok(Output::Offsets(v)),
        }] => {
            assert_eq!(*o, op);
            assert_eq!(v[0].result, Ok(42));
        }
        other => panic!("{other:?}"),
    }
}

/// Item 9d: a connect error retrying cannot fix (TLS verification) on every bootstrap
/// broker fails the operation at once with that error, not at `request_timeout`.
#[test]
fn a_tls_failure_on_every_bootstrap_broker_fails_the_operation_at_once() {
    let mut t = Harness::new(ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:9092,k2:9092").unwrap()),
        ..modern()
    });
    let t0 = t.now;
    let op = t.client.update_cluster(t.now);
    let tls = || TransportError::new(TransportErrorKind::Tls, "certificate not trusted");
    let mut result = None;
    for _ in 0..10 {
        let ios = t.ios();
        for io in &ios {
            if let Io::Connect { conn, .. } = io {
                t.client.handle_connect_failed(t.now, *conn, tls());
            }
        }
        if let Some(Event::Done { op: o, result: r }) = t
            .events()
            .into_iter()
            .find(|e| matches!(e, Event::Done { .. }))
        {
            assert_eq!(o, op);
            result = Some(r);
            break;
        }
        if ios.is_empty() {
            t.advance_to_timeout();
        }
    }
    assert_eq!(result, Some(Err(Error::Transport(tls()))));
    assert_eq!(t.now, t0, "at once");
}

/// Item 9e, through the client: `send` of a Produce with acks=0 finishes when written.
#[test]
fn a_produce_with_acks_0_through_send_finishes_when_written() {
    use crate::protocol::messages::ProduceRequest;
    let mut t = Harness::new(modern());
    let op = t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    t.reply(conn(0), &w[0].1, metadata(&[(1, "k1")], &[]));
    assert_eq!(t.events().len(), 1, "{op:?} done");
    let produce = RequestBody::Produce(ProduceRequest {
        acks: 0,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let op = t.client.send(t.now, Target::Broker(1), produce);
    assert_eq!(key_version(&t.written()).len(), 1);
    assert!(matches!(
        &t.events()[..],
        [Event::Done { op: o, result: Ok(Output::Response(ResponseBody::Produce(_))) }] if *o == op
    ));
}

/// Item 11: the reconnect state of brokers that left the cluster is forgotten.
#[test]
fn reconnect_state_of_departed_brokers_is_forgotten() {
    let mut t = Harness::new(modern());
    t.client.update_cluster(t.now);
    t.ios();
    t.connect(conn(0));
    let w = t.negotiate();
    t.reply(conn(0), &w[0].1, metadata(&[(1, "k1")], &[]));
    t.events();
    // A hundred generations of brokers, each advertising a new address that fails.
    for gen in 2..102 {
        let host = format!("b{gen}");
        t.client.update_cluster(t.now);
        // (With the refresh that the last failure asked for.)
        for (c, h, _) in t.written() {
            t.reply(c, &h, metadata(&[(1, "k1"), (gen, &host)], &[]));
        }
        t.client.send(
            t.now,
            Target::Broker(gen),
            RequestBody::Metadata(Default::default()),
        );
        for io in t.ios() {
            if let Io::Connect { conn, host: h, .. } = io {
                assert_eq!(h, host);
                let refused = TransportError::new(TransportErrorKind::Refused, "refused");
                t.client.handle_connect_failed(t.now, conn, refused);
            }
        }
        assert!(t
            .client
            .backoff
            .contains_key(&BrokerAddress::new(host, 9092)));
        t.events();
        t.now += Duration::from_millis(10);
        t.client.handle_timeout(t.now);
    }
    assert!(
        t.client.backoff.len() <= 2,
        "{:?}",
        t.client.backoff.keys().collect::<Vec<_>>()
    );
}

/// Item 10: the core gives up on a ZooKeeper read that gets no answer (the transport needs
/// no timeout of its own), ignores the late answer, and asks again.
#[test]
fn a_zookeeper_read_without_an_answer_is_abandoned_at_its_deadline() {
    let mut t = Harness::new(ClientConfig {
        bootstrap: Bootstrap::ZooKeeper {
            connect: "z1:2181".into(),
        },
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    });
    let t0 = t.now;
    let op = t.client.update_cluster(t.now);
    let first = match &t.ios()[..] {
        [Io::ZooKeeper { op, .. }] => *op,
        other => panic!("{other:?}"),
    };
    // No answer: the read is abandoned after zookeeper_request_timeout (2 s), then
    // asked again.
    let mut second = None;
    for _ in 0..10 {
        t.advance_to_timeout();
        if let [Io::ZooKeeper { op, .. }] = &t.ios()[..] {
            second = Some(*op);
            break;
        }
    }
    let second = second.expect("asked again");
    assert_ne!(second, first);
    let backoff = t.client.config().reconnect_backoff;
    assert_eq!(t.now, t0 + Duration::from_secs(2) + backoff);
    // The late answer to the first is ignored.
    t.client
        .handle_zk_result(t.now, first, Ok(ZkResponse::Children(vec!["1".into()])));
    assert!(t.ios().is_empty());
    // Silence until the operation's deadline: a timeout that says why.
    let mut result = None;
    for _ in 0..100 {
        t.ios();
        if let Some(Event::Done { op: o, result: r }) = t.events().pop() {
            assert_eq!(o, op);
            result = Some(r);
            break;
        }
        t.advance_to_timeout();
    }
    let result = result.unwrap();
    assert!(
        matches!(&result, Err(Error::Timeout { what }) if what.contains("no answer from ZooKeeper")),
        "{result:?}"
    );
    assert_eq!(t.now, t0 + Duration::from_secs(10));
}

mod config_durations {
    //! Item 8: no configuration can make the core panic on `Instant + Duration`.

    use std::time::{Duration, Instant};

    use quickcheck::{Arbitrary, Gen};

    use super::super::*;
    use crate::config::{MAX_DURATION, MIN_DURATION};

    /// Any duration, with the edges likely: zero, nanoseconds, milliseconds, huge
    /// seconds, `Duration::MAX`.
    fn any_duration(g: &mut Gen) -> Duration {
        match u8::arbitrary(g) % 6 {
            0 => Duration::ZERO,
            1 => Duration::from_nanos(u64::arbitrary(g) % 2_000_000),
            2 => Duration::from_millis(u64::from(u16::arbitrary(g))),
            3 => Duration::from_secs(u64::arbitrary(g)),
            4 => Duration::MAX,
            _ => MAX_DURATION + Duration::from_nanos(u64::from(u8::arbitrary(g) % 2)),
        }
    }

    /// A duration within the accepted range, by construction (not by luck): half the
    /// time at the scale of real settings, half anywhere up to the maximum.
    fn valid_duration(g: &mut Gen) -> Duration {
        let span = (MAX_DURATION - MIN_DURATION).as_nanos() as u64;
        let offset = if bool::arbitrary(g) {
            u64::arbitrary(g) % 120_000_000_000 // up to two minutes
        } else {
            u64::arbitrary(g) % (span + 1)
        };
        (MIN_DURATION + Duration::from_nanos(offset)).min(MAX_DURATION)
    }

    /// The seven durations of a configuration.
    #[derive(Debug, Clone)]
    struct Durations([Duration; 7]);

    impl Durations {
        fn config(&self) -> ClientConfig {
            let [a, b, c, d, e, f, g] = self.0;
            ClientConfig {
                bootstrap: Bootstrap::Brokers(BrokerAddress::parse("k1:1,k2:2").unwrap()),
                broker_version: BrokerVersion::new(2, 8, 0),
                rng_seed: Some(1),
                api_version_request_timeout: a,
                api_version_fallback: b,
                request_timeout: c,
                connect_timeout: d,
                reconnect_backoff: e,
                reconnect_backoff_max: f,
                metadata_max_age: g,
                ..ClientConfig::default()
            }
        }
    }

    #[derive(Debug, Clone)]
    struct AnyDurations(Durations);

    impl Arbitrary for AnyDurations {
        fn arbitrary(g: &mut Gen) -> Self {
            AnyDurations(Durations(std::array::from_fn(|_| any_duration(g))))
        }
    }

    #[derive(Debug, Clone)]
    struct ValidDurations(Durations);

    impl Arbitrary for ValidDurations {
        fn arbitrary(g: &mut Gen) -> Self {
            ValidDurations(Durations(std::array::from_fn(|_| valid_duration(g))))
        }
    }

    /// Drives a client through connects, failures, silence and every timer it sets,
    /// checking the timer contract (after `handle_timeout(now)`, nothing is due at
    /// `now`). A panic fails the property.
    fn exercise(config: ClientConfig, script: &[u8]) -> Result<(), String> {
        let mut client = Client::new(config).map_err(|e| e.to_string())?;
        let mut now = Instant::now();
        client.update_cluster(now);
        client.list_offsets(now, "t", vec![(0, -1)]);
        let mut steps = script.iter().copied().cycle().take(200);
        for _ in 0..200 {
            while let Some(io) = client.poll_io() {
                if let Io::Connect { conn, .. } = io {
                    match steps.next().unwrap_or(0) % 3 {
                        0 => client.handle_connected(now, conn),
                        1 => {
                            let e = TransportError::new(TransportErrorKind::Refused, "no");
                            client.handle_connect_failed(now, conn, e);
                        }
                        _ => {} // never answered
                    }
                }
            }
            let mut buf = Vec::new();
            while client.poll_transmit(now, &mut buf).is_some() {}
            while client.poll_event().is_some() {}
            let Some(t) = client.poll_timeout() else {
                break;
            };
            now = now.max(t);
            client.handle_timeout(now);
            if let Some(t) = client.poll_timeout().filter(|t| *t <= now) {
                return Err(format!(
                    "a timer due at {t:?} after handle_timeout({now:?})"
                ));
            }
        }
        Ok(())
    }

    quickcheck::quickcheck! {
        /// Any durations: the configuration is refused with `Error::Config`, or the
        /// client runs without panicking.
        fn any_durations_are_refused_or_harmless(d: AnyDurations, script: Vec<u8>) -> bool {
            let config = d.0.config();
            match config.validate() {
                Err(Error::Config(_)) => matches!(Client::new(config), Err(Error::Config(_))),
                Err(_) => false,
                Ok(()) => exercise(config, &script).is_ok(),
            }
        }

        /// Durations within the documented range are accepted and harmless.
        fn valid_durations_are_accepted_and_harmless(d: ValidDurations, script: Vec<u8>) -> bool {
            let config = d.0.config();
            config.validate().is_ok() && exercise(config, &script).map_err(|e| eprintln!("{e}")).is_ok()
        }
    }

    /// The edges themselves.
    #[test]
    fn the_edges_of_the_range() {
        let with = |d| Durations([d; 7]).config();
        assert!(with(MIN_DURATION).validate().is_ok());
        assert!(with(MAX_DURATION).validate().is_ok());
        exercise(with(MAX_DURATION), &[0, 1, 2]).unwrap();
        exercise(with(MIN_DURATION), &[0, 1, 2]).unwrap();
        for bad in [
            Duration::ZERO,
            MAX_DURATION + Duration::from_nanos(1),
            Duration::MAX,
        ] {
            assert!(
                matches!(with(bad).validate(), Err(Error::Config(_))),
                "{bad:?}"
            );
        }
    }
}
