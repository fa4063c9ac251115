//! Captures the tests alter as a mirror port does (read with the capture
//! crate, written as classic pcap): one direction of every TCP connection
//! delayed (the two directions travel different paths to the mirror), or dropped.

use std::path::Path;

/// One captured frame.
#[derive(Clone)]
pub struct Frame {
    pub ts_ns: u64,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// A capture held in memory: its link type and frames. Read with the
/// capture crate's reader, written with the PCAP export's record format.
pub struct Pcap {
    pub link: u32,
    pub frames: Vec<Frame>,
}

impl Pcap {
    pub fn read(path: &Path) -> Pcap {
        let mut file = capture::file::CaptureFile::open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut link = None;
        let mut frames = Vec::new();
        while let Some(p) = file
            .next_packet()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        {
            assert!(
                link.is_none_or(|l| l == p.link.0),
                "{}: one link type",
                path.display()
            );
            link = Some(p.link.0);
            frames.push(Frame {
                ts_ns: p.ts_ns,
                orig_len: p.orig_len,
                data: p.data.to_vec(),
            });
        }
        Pcap {
            link: link.unwrap_or_else(|| panic!("{}: no frame", path.display())),
            frames,
        }
    }

    pub fn write(&self, path: &Path) {
        use output::pcap::format::{pcap_header, pcap_record};
        let mut out = Vec::new();
        pcap_header(&mut out, self.link, 0);
        for f in &self.frames {
            pcap_record(&mut out, f.ts_ns, f.orig_len, &f.data);
        }
        std::fs::write(path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// For each frame: its TCP segment's flags and whether the client sent
    /// it, for connections whose handshake is in the capture (the SYN's
    /// sender, a SYN-ACK's receiver is the client); `None` for other frames.
    /// Without a handshake nobody can tell which side is which.
    fn tcp_sides(&self) -> Vec<Option<(bool, u8)>> {
        // (client, server, opened by a handshake we saw)
        let mut conns: Vec<(Endpoint, Endpoint, bool)> = Vec::new();
        self.frames
            .iter()
            .map(|f| {
                let seg = tcp_of(self.link, &f.data)?;
                let known = conns.iter().find_map(|&(c, sv, opened)| {
                    if (c, sv) == (seg.src, seg.dst) {
                        Some((true, opened))
                    } else if (sv, c) == (seg.src, seg.dst) {
                        Some((false, opened))
                    } else {
                        None
                    }
                });
                let (from_client, opened) = known.unwrap_or_else(|| {
                    let syn = seg.flags & 0x02 != 0;
                    let syn_ack = seg.flags & 0x12 == 0x12;
                    let (c, sv) = if syn_ack {
                        (seg.dst, seg.src)
                    } else {
                        (seg.src, seg.dst)
                    };
                    conns.push((c, sv, syn));
                    (!syn_ack, syn)
                });
                opened.then_some((from_client, seg.flags))
            })
            .collect()
    }

    /// Delays every TCP segment sent by the client (`client = true`) or the
    /// server of its connection (one whose handshake is in the capture) by
    /// `delay_ns`, then orders the frames by time again (stable: each
    /// direction keeps its own order). Returns how many frames now precede
    /// a frame they used to follow.
    pub fn delay_tcp_side(&mut self, client: bool, delay_ns: u64) -> usize {
        let sides = self.tcp_sides();
        let mut tagged: Vec<(u64, usize, Frame)> = Vec::new();
        for (i, (f, side)) in self.frames.iter().zip(sides).enumerate() {
            let mut ts = f.ts_ns;
            if side.is_some_and(|(from_client, _)| from_client == client) {
                ts += delay_ns;
            }
            tagged.push((ts, i, f.clone()));
        }
        tagged.sort_by_key(|(ts, i, _)| (*ts, *i));
        let moved = tagged.windows(2).filter(|w| w[0].1 > w[1].1).count();
        self.frames = tagged
            .into_iter()
            .map(|(ts, _, mut f)| {
                f.ts_ns = ts;
                f
            })
            .collect();
        moved
    }

    /// Keeps, of every TCP connection whose handshake is in the capture,
    /// only the segments the client (`client = true`) or the server sent,
    /// without the SYN / SYN-ACK too if `handshake` is false (a connection
    /// the mirror picks up midway). Other frames stay. Returns the frames
    /// dropped.
    pub fn keep_tcp_side(&mut self, client: bool, handshake: bool) -> usize {
        let sides = self.tcp_sides();
        let before = self.frames.len();
        let mut side_of = sides.into_iter();
        self.frames.retain(|_| match side_of.next().flatten() {
            Some((from_client, flags)) => from_client == client && (handshake || flags & 0x02 == 0),
            None => true,
        });
        before - self.frames.len()
    }
}

/// (address bytes, port) of one side of a TCP connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Endpoint([u8; 16], u16);

pub struct TcpSeg {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub flags: u8,
}

const LINK_NULL: u32 = 0;
const LINK_ETHERNET: u32 = 1;

/// The innermost TCP segment of a frame: through VLAN tags and VXLAN.
pub fn tcp_of(link: u32, frame: &[u8]) -> Option<TcpSeg> {
    match link {
        LINK_ETHERNET => ether(frame),
        LINK_NULL => {
            let family = u32::from_le_bytes(frame.get(..4)?.try_into().ok()?);
            match family {
                2 => ip(4, frame.get(4..)?),
                24 | 28 | 30 => ip(6, frame.get(4..)?),
                _ => None,
            }
        }
        other => panic!("link type {other}: only Ethernet and BSD loopback are handled"),
    }
}

fn ether(f: &[u8]) -> Option<TcpSeg> {
    let mut o = 12;
    loop {
        let et = u16::from_be_bytes(f.get(o..o + 2)?.try_into().ok()?);
        match et {
            0x8100 | 0x88a8 => o += 4,
            0x0800 => return ip(4, f.get(o + 2..)?),
            0x86dd => return ip(6, f.get(o + 2..)?),
            _ => return None,
        }
    }
}

fn ip(version: u8, p: &[u8]) -> Option<TcpSeg> {
    let (proto, src, dst, l4) = if version == 4 {
        let ihl = usize::from(p.first()? & 0x0f) * 4;
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s[..4].copy_from_slice(p.get(12..16)?);
        d[..4].copy_from_slice(p.get(16..20)?);
        (*p.get(9)?, s, d, p.get(ihl..)?)
    } else {
        (
            *p.get(6)?,
            p.get(8..24)?.try_into().ok()?,
            p.get(24..40)?.try_into().ok()?,
            p.get(40..)?,
        )
    };
    let port = |o: usize| Some(u16::from_be_bytes(l4.get(o..o + 2)?.try_into().ok()?));
    match proto {
        6 => Some(TcpSeg {
            src: Endpoint(src, port(0)?),
            dst: Endpoint(dst, port(2)?),
            flags: *l4.get(13)?,
        }),
        // VXLAN: the inner frame after the 8-byte UDP and 8-byte VXLAN headers.
        17 if port(2)? == 4789 => ether(l4.get(16..)?),
        _ => None,
    }
}
