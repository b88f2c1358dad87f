//! xxHash32, written out from the algorithm's description, so that the LZ4 target can
//! repair frame header checksums (grete's own copy is private to its codec).

const P1: u32 = 0x9E37_79B1;
const P2: u32 = 0x85EB_CA77;
const P3: u32 = 0xC2B2_AE3D;
const P4: u32 = 0x27D4_EB2F;
const P5: u32 = 0x1656_67B1;

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn lane(acc: u32, input: u32) -> u32 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(13)
        .wrapping_mul(P1)
}

/// The 32-bit xxHash of `data` with `seed`.
pub fn xxh32(data: &[u8], seed: u32) -> u32 {
    let mut tail = data;
    let mut h = if data.len() >= 16 {
        let mut acc = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while tail.len() >= 16 {
            for (i, a) in acc.iter_mut().enumerate() {
                *a = lane(*a, le32(&tail[4 * i..]));
            }
            tail = &tail[16..];
        }
        acc[0]
            .rotate_left(1)
            .wrapping_add(acc[1].rotate_left(7))
            .wrapping_add(acc[2].rotate_left(12))
            .wrapping_add(acc[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u32);
    while tail.len() >= 4 {
        h = h
            .wrapping_add(le32(tail).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
        tail = &tail[4..];
    }
    for &b in tail {
        h = h
            .wrapping_add((b as u32).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::xxh32;

    #[test]
    fn known_values() {
        // Reference values of the xxHash specification's test vectors.
        assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
        assert_eq!(xxh32(b"a", 0), 0x550D_7456);
        assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
    }
}
