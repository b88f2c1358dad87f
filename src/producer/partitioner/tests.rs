use quickcheck::quickcheck;

use super::*;

#[test]
fn murmur2_matches_the_java_client() {
    // Kafka's UtilsTest vectors, plus one from librdkafka's rdmurmur2.c.
    let cases: &[(&[u8], i32)] = &[
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
        (b"kafka", 0xd067_cf64_u32 as i32),
    ];
    for (key, hash) in cases {
        assert_eq!(murmur2(key), *hash, "{}", String::from_utf8_lossy(key));
    }
    // toPositive, not abs: i32::MIN-like hashes keep their low 31 bits.
    assert_eq!(
        murmur2_partition(b"21", 1000),
        (-973_932_308_i32 & 0x7fff_ffff) as usize % 1000
    );
}

#[test]
fn sha1_hashing_matches_pykafka() {
    // Printed by PyKafka 2.8.0's hashing_partitioner over partitions 0..n.
    let keys: [&[u8]; 4] = [b"", b"a", b"key-1", b"hello world"];
    let all: Vec<u8> = (0..=255).collect();
    let expected: &[(usize, [usize; 5])] = &[
        (1, [0, 0, 0, 0, 0]),
        (3, [1, 1, 0, 1, 0]),
        (7, [3, 4, 2, 3, 1]),
        (12, [1, 4, 3, 1, 0]),
        (100, [5, 52, 71, 33, 4]),
    ];
    for (count, want) in expected {
        let got: Vec<usize> = keys
            .iter()
            .copied()
            .chain([all.as_slice()])
            .map(|k| Sha1Hashing::default().partition(Some(k), *count))
            .collect();
        assert_eq!(&got, want, "{count} partitions");
    }
}

#[test]
fn round_robin_starts_at_one_like_pykafka() {
    let mut p = RoundRobin::new();
    let got: Vec<usize> = (0..6).map(|_| p.partition(None, 4)).collect();
    assert_eq!(got, [1, 2, 3, 0, 1, 2]);
}

#[test]
fn sticky_moves_only_when_its_batch_closes() {
    let mut p = Sticky::new(42);
    let first = p.partition(None, 8);
    for _ in 0..100 {
        assert_eq!(p.partition(Some(b"ignored"), 8), first);
    }
    // Closing another partition's batch changes nothing.
    p.batch_closed((first + 1) % 8);
    assert_eq!(p.partition(None, 8), first);
    p.batch_closed(first);
    let second = p.partition(None, 8);
    assert_ne!(second, first);
}

#[test]
fn sticky_reaches_every_partition() {
    let mut p = Sticky::new(7);
    let mut seen = [false; 5];
    for _ in 0..200 {
        let i = p.partition(None, 5);
        seen[i] = true;
        p.batch_closed(i);
    }
    assert_eq!(seen, [true; 5]);
}

#[test]
fn default_is_murmur2_for_keys_and_sticky_without() {
    let mut p = DefaultPartitioner::new(3);
    assert_eq!(
        p.partition(Some(b"foobar"), 6),
        murmur2_partition(b"foobar", 6)
    );
    let sticky = p.partition(None, 6);
    assert_eq!(p.partition(None, 6), sticky);
    p.batch_closed(sticky);
    assert_ne!(p.partition(None, 6), sticky);
}

quickcheck! {
    fn every_partitioner_answers_in_range(keys: Vec<Option<Vec<u8>>>, count: u8, seed: u64) -> bool {
        let count = usize::from(count) + 1;
        let mut all: Vec<Box<dyn Partitioner>> = vec![
            Box::new(RoundRobin::new()),
            Box::new(Sha1Hashing::default()),
            Box::new(Murmur2::default()),
            Box::new(Sticky::new(seed)),
            Box::new(DefaultPartitioner::new(seed)),
        ];
        keys.iter().all(|key| {
            all.iter_mut().all(|p| {
                let i = p.partition(key.as_deref(), count);
                p.batch_closed(i);
                i < count
            })
        })
    }

    fn sticky_never_repeats_the_closed_partition(seed: u64, count: u8, rounds: u8) -> bool {
        let count = usize::from(count % 16) + 2;
        let mut p = Sticky::new(seed);
        let mut last = p.partition(None, count);
        (0..rounds).all(|_| {
            p.batch_closed(last);
            let next = p.partition(None, count);
            let ok = next != last && next < count;
            last = next;
            ok
        })
    }

    fn keyed_choice_depends_only_on_key_and_count(key: Vec<u8>, count: u8) -> bool {
        let count = usize::from(count) + 1;
        let a = Murmur2::default().partition(Some(&key), count);
        let mut b = DefaultPartitioner::new(1);
        b.partition(None, count);
        a == b.partition(Some(&key), count) && a == murmur2_partition(&key, count)
    }
}
