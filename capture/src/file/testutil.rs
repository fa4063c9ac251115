//! Builders for hand-made pcap/pcapng bytes, and a self-removing temp file.

use std::path::{Path, PathBuf};

/// A xorshift64 generator from `seed`, for the randomised file tests.
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

pub(crate) struct PcapBuilder {
    big: bool,
    out: Vec<u8>,
}

impl PcapBuilder {
    pub(crate) fn new(big: bool, nanos: bool, snaplen: u32, link_field: u32) -> PcapBuilder {
        let mut b = PcapBuilder {
            big,
            out: Vec::new(),
        };
        b.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        b.u16(2);
        b.u16(4);
        b.u32(0);
        b.u32(0);
        b.u32(snaplen);
        b.u32(link_field);
        b
    }

    fn u16(&mut self, v: u16) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    pub(crate) fn packet(&mut self, sec: u32, frac: u32, data: &[u8], orig_len: u32) -> &mut Self {
        self.raw_record(sec, frac, data.len() as u32, orig_len, data)
    }

    /// A record whose caplen field need not match the data.
    pub(crate) fn raw_record(
        &mut self,
        sec: u32,
        frac: u32,
        caplen: u32,
        orig_len: u32,
        data: &[u8],
    ) -> &mut Self {
        self.u32(sec);
        self.u32(frac);
        self.u32(caplen);
        self.u32(orig_len);
        self.out.extend_from_slice(data);
        self
    }

    pub(crate) fn finish(&self) -> Vec<u8> {
        self.out.clone()
    }
}

pub(crate) struct NgBuilder {
    big: bool,
    out: Vec<u8>,
}

impl NgBuilder {
    /// Starts with a Section Header Block (no options).
    pub(crate) fn new(big: bool) -> NgBuilder {
        let mut b = NgBuilder {
            big,
            out: Vec::new(),
        };
        b.shb(big);
        b
    }

    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    fn b16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn b32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A new section, in the given byte order.
    pub(crate) fn shb(&mut self, big: bool) -> &mut Self {
        self.big = big;
        let mut body = Vec::new();
        body.extend_from_slice(&self.b32(0x1a2b_3c4d));
        body.extend_from_slice(&self.b16(1));
        body.extend_from_slice(&self.b16(0));
        body.extend_from_slice(&[0xff; 8]); // section length: unknown
        self.block(0x0a0d_0d0a, &body)
    }

    pub(crate) fn idb(&mut self, link: u16, snaplen: u32, options: &[(u16, Vec<u8>)]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.b16(link));
        body.extend_from_slice(&self.b16(0));
        body.extend_from_slice(&self.b32(snaplen));
        if !options.is_empty() {
            for (code, value) in options {
                body.extend_from_slice(&self.b16(*code));
                body.extend_from_slice(&self.b16(value.len() as u16));
                body.extend_from_slice(value);
                while body.len() % 4 != 0 {
                    body.push(0);
                }
            }
            body.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        self.block(1, &body)
    }

    fn packet_body(&self, head: &[u8], ts: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
        let mut body = head.to_vec();
        body.extend_from_slice(&self.b32((ts >> 32) as u32));
        body.extend_from_slice(&self.b32(ts as u32));
        body.extend_from_slice(&self.b32(data.len() as u32));
        body.extend_from_slice(&self.b32(orig_len));
        body.extend_from_slice(data);
        body
    }

    pub(crate) fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let body = self.packet_body(&self.b32(iface), ts, data, orig_len);
        self.block(6, &body)
    }

    /// Obsolete Packet Block.
    pub(crate) fn pb(&mut self, iface: u16, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut head = self.b16(iface).to_vec();
        head.extend_from_slice(&self.b16(0));
        let body = self.packet_body(&head, ts, data, orig_len);
        self.block(2, &body)
    }

    pub(crate) fn spb(&mut self, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = self.b32(orig_len).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// Any block; the body is padded to 4 bytes.
    pub(crate) fn block(&mut self, btype: u32, body: &[u8]) -> &mut Self {
        let padded = (body.len() + 3) & !3;
        let total = (12 + padded) as u32;
        let t = self.b32(btype);
        let l = self.b32(total);
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&l);
        self
    }

    pub(crate) fn finish(&self) -> Vec<u8> {
        self.out.clone()
    }
}

/// A file in the temp dir, removed on drop.
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    pub(crate) fn new(name: &str, bytes: &[u8]) -> TempFile {
        let dir = std::env::temp_dir().join(format!("flowtap-capture-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
