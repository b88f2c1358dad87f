//! A sketch, not part of grete: the uncompressed v2 batch encoding with the changes this
//! benchmark proposed for `RecordBatchEncoder` (varint sizes by comparison, no zero fill
//! before writing, short keys staged with their varints, everything inlined), to measure
//! what they would give; grete adopted them in f17c032. `main` checks that its output is
//! byte-identical to grete's before timing it.

/// The size of an unsigned LEB128 value: compares for the one- and two-byte cases that
/// record fields nearly always are.
#[inline(always)]
fn uvarint_size(u: u64) -> usize {
    if u < 0x80 {
        1
    } else if u < 0x4000 {
        2
    } else {
        (((63 - (u | 1).leading_zeros()) * 9 + 73) / 64) as usize
    }
}

#[inline(always)]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes an unsigned LEB128 value into `buf` at `*n`.
#[inline(always)]
fn put_uvarint(buf: &mut [u8; 64], n: &mut usize, mut u: u64) {
    while u >= 0x80 {
        buf[*n] = (u as u8) | 0x80;
        *n += 1;
        u >>= 7;
    }
    buf[*n] = u as u8;
    *n += 1;
}

/// One batch state, like `RecordBatchEncoder` without compression or headers.
pub struct Sketch<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    base_offset: i64,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl<'a> Sketch<'a> {
    pub fn new(out: &'a mut Vec<u8>, base_offset: i64) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0u8; 61]);
        Sketch {
            out,
            start,
            base_offset,
            count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
        }
    }

    #[inline(always)]
    pub fn append(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        let ts = zigzag(timestamp.wrapping_sub(self.base_timestamp));
        let od = zigzag(self.count as i64);
        let kl = key.map_or(1, |k| zigzag(k.len() as i64));
        let vl = value.map_or(1, |v| zigzag(v.len() as i64));
        let body = 1
            + uvarint_size(ts)
            + uvarint_size(od)
            + uvarint_size(kl)
            + key.map_or(0, <[u8]>::len)
            + uvarint_size(vl)
            + value.map_or(0, <[u8]>::len)
            + 1;
        let len = zigzag(body as i64);
        self.out.reserve(uvarint_size(len) + body);
        // Everything before the value goes through one small stack buffer when the key is
        // short, so that each record costs two copies into the output, not four.
        let mut head = [0u8; 64];
        let mut n = 0;
        put_uvarint(&mut head, &mut n, len);
        head[n] = 0; // attributes
        n += 1;
        put_uvarint(&mut head, &mut n, ts);
        put_uvarint(&mut head, &mut n, od);
        put_uvarint(&mut head, &mut n, kl);
        match key {
            Some(k) if k.len() <= 24 => {
                head[n..n + k.len()].copy_from_slice(k);
                n += k.len();
            }
            Some(k) => {
                self.out.extend_from_slice(&head[..n]);
                self.out.extend_from_slice(k);
                n = 0;
            }
            None => {}
        }
        put_uvarint(&mut head, &mut n, vl);
        self.out.extend_from_slice(&head[..n]);
        if let Some(v) = value {
            self.out.extend_from_slice(v);
        }
        self.out.push(0); // no headers
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    pub fn finish(self) -> usize {
        let size = self.out.len() - self.start;
        let h = &mut self.out[self.start..self.start + 61];
        h[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        h[8..12].copy_from_slice(&((size - 12) as i32).to_be_bytes());
        h[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        h[16] = 2;
        h[21..23].copy_from_slice(&0i16.to_be_bytes());
        h[23..27].copy_from_slice(&(self.count - 1).to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        h[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        h[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        h[57..61].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&self.out[self.start + 21..]);
        self.out[self.start + 17..self.start + 21].copy_from_slice(&crc.to_be_bytes());
        size
    }
}
