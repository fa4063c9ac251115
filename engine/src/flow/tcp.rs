//! What the flow table remembers of a TCP connection's control packets:
//! enough for the Zeek-style history string and connection state, and to
//! know when the connection is closed.

use arrayvec::ArrayString;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// Per-direction event bits (index 0 = originator, 1 = responder).
const EV_SYN: u8 = 1; // SYN without ACK
const EV_SYNACK: u8 = 2;
const EV_ACK: u8 = 4; // pure ACK
const EV_DATA: u8 = 8;
const EV_FIN: u8 = 16;
const EV_RST: u8 = 32;
const EV_MULTI: u8 = 64; // SYN+FIN or SYN+RST

const HISTORY_MAX: usize = 16;

#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTrack {
    seen: [u8; 2],
    /// Zeek's history letters, at most [`HISTORY_MAX`].
    history: ArrayString<HISTORY_MAX>,
}

impl TcpTrack {
    /// Records a packet with `flags` and `payload_len` bytes sent by the
    /// originator (`from_orig`) or the responder; whether the state changed
    /// (a kind of packet not seen before from that side).
    #[inline]
    pub fn on_packet(&mut self, from_orig: bool, flags: u8, payload_len: usize) -> bool {
        let dir = usize::from(!from_orig);
        let mut ev = 0u8;
        if flags & SYN != 0 {
            ev |= if flags & ACK != 0 { EV_SYNACK } else { EV_SYN };
            if flags & (FIN | RST) != 0 {
                ev |= EV_MULTI;
            }
        } else {
            if flags & FIN != 0 {
                ev |= EV_FIN;
            }
            if flags & RST != 0 {
                ev |= EV_RST;
            }
            if flags & ACK != 0 && payload_len == 0 && flags & (FIN | RST) == 0 {
                ev |= EV_ACK;
            }
        }
        if payload_len > 0 {
            ev |= EV_DATA;
        }
        let new = ev & !self.seen[dir];
        if new == 0 {
            return false;
        }
        self.seen[dir] |= new;
        // Letters in Zeek's order of significance within one packet.
        for (bit, letter) in [
            (EV_SYN, b'S'),
            (EV_SYNACK, b'H'),
            (EV_MULTI, b'Q'),
            (EV_ACK, b'A'),
            (EV_DATA, b'D'),
            (EV_FIN, b'F'),
            (EV_RST, b'R'),
        ] {
            if new & bit != 0 {
                self.push(if from_orig {
                    letter
                } else {
                    letter.to_ascii_lowercase()
                });
            }
        }
        true
    }

    /// Notes that the originator was chosen by heuristic (the first packet was a
    /// SYN-ACK, or came from a server port without a handshake).
    pub fn mark_flipped(&mut self) {
        self.push(b'^');
    }

    fn push(&mut self, c: u8) {
        // Full: the letters that fit are kept.
        let _ = self.history.try_push(char::from(c));
    }

    pub fn history(&self) -> &str {
        self.history.as_str()
    }

    /// Both sides sent FIN, or either sent RST: only late packets remain.
    pub fn is_closed(&self) -> bool {
        let fin_both = self.seen[0] & EV_FIN != 0 && self.seen[1] & EV_FIN != 0;
        let rst = (self.seen[0] | self.seen[1]) & EV_RST != 0;
        fin_both || rst
    }

    pub fn rst_seen(&self) -> bool {
        (self.seen[0] | self.seen[1]) & EV_RST != 0
    }

    /// The handshake completed as far as a mirror can tell.
    pub fn established(&self) -> bool {
        self.seen[0] & EV_SYN != 0
            && self.seen[1] & EV_SYNACK != 0
            && self.seen[0] & (EV_ACK | EV_DATA | EV_FIN | EV_RST) != 0
    }

    /// Zeek's conn_state for what was seen.
    pub fn conn_state(&self) -> &'static str {
        let o = self.seen[0];
        let r = self.seen[1];
        let syn = o & EV_SYN != 0;
        let synack = r & EV_SYNACK != 0;
        let (o_fin, r_fin) = (o & EV_FIN != 0, r & EV_FIN != 0);
        let (o_rst, r_rst) = (o & EV_RST != 0, r & EV_RST != 0);
        if !syn && !synack {
            return "OTH";
        }
        if syn && !synack {
            if r_rst {
                return "REJ";
            }
            if o_rst {
                return "RSTOS0";
            }
            if o_fin {
                return "SH";
            }
            if r & (EV_ACK | EV_DATA) != 0 {
                return "OTH";
            }
            return "S0";
        }
        if !syn && synack {
            if r_rst {
                return "RSTRH";
            }
            if r_fin {
                return "SHR";
            }
            return "OTH";
        }
        // Handshake seen from both sides.
        if o_rst {
            return "RSTO";
        }
        if r_rst {
            return "RSTR";
        }
        match (o_fin, r_fin) {
            (true, true) => "SF",
            (true, false) => "S2",
            (false, true) => "S3",
            (false, false) => "S1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pkts: &[(bool, u8, usize)]) -> TcpTrack {
        let mut t = TcpTrack::default();
        for &(o, f, l) in pkts {
            t.on_packet(o, f, l);
        }
        t
    }

    #[test]
    fn full_connection_is_sf_with_zeek_history() {
        let t = run(&[
            (true, SYN, 0),
            (false, SYN | ACK, 0),
            (true, ACK, 0),
            (true, ACK, 100),
            (false, ACK, 0),
            (false, ACK, 500),
            (true, FIN | ACK, 0),
            (false, FIN | ACK, 0),
            (true, ACK, 0),
        ]);
        assert_eq!(t.history(), "ShADadFf");
        assert_eq!(t.conn_state(), "SF");
        assert!(t.is_closed());
        assert!(t.established());
    }

    #[test]
    fn states() {
        assert_eq!(run(&[(true, SYN, 0)]).conn_state(), "S0");
        assert_eq!(
            run(&[(true, SYN, 0), (false, RST | ACK, 0)]).conn_state(),
            "REJ"
        );
        assert_eq!(
            run(&[(true, SYN, 0), (false, SYN | ACK, 0), (true, ACK, 0)]).conn_state(),
            "S1"
        );
        assert_eq!(
            run(&[(true, SYN, 0), (false, SYN | ACK, 0), (true, RST, 0)]).conn_state(),
            "RSTO"
        );
        assert_eq!(run(&[(true, ACK, 10), (false, ACK, 0)]).conn_state(), "OTH");
    }

    #[test]
    fn history_is_bounded() {
        let mut t = TcpTrack::default();
        for _ in 0..100 {
            t.mark_flipped();
        }
        assert_eq!(t.history().len(), HISTORY_MAX);
    }
}
