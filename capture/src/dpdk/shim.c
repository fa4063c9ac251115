/*
 * The few DPDK calls flowtap needs that are `static inline` in the headers
 * (so have no symbol to link to): the RX burst, rte_errno (a per-lcore
 * thread-local) and the mbuf fields of a received burst, read here so the
 * Rust side does not depend on rte_mbuf's anonymous unions.
 */
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

/* One received frame: where its first segment's bytes are, how many, the
 * whole packet's length, and the PMD's RX timestamp when it set one. */
struct ft_frame {
	const uint8_t *data;
	uint32_t data_len;
	uint32_t pkt_len;
	uint64_t ts;
	uint32_t has_ts;
	uint32_t nb_segs;
};

uint16_t ft_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **mbufs,
		     struct ft_frame *frames, uint16_t max, int ts_offset,
		     uint64_t ts_flag)
{
	uint16_t n = rte_eth_rx_burst(port, queue, mbufs, max);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = mbufs[i];
		frames[i].data = rte_pktmbuf_mtod(m, const uint8_t *);
		frames[i].data_len = m->data_len;
		frames[i].pkt_len = m->pkt_len;
		frames[i].nb_segs = m->nb_segs;
		if (ts_offset >= 0 && ts_flag != 0 && (m->ol_flags & ts_flag)) {
			frames[i].ts = *RTE_MBUF_DYNFIELD(m, ts_offset, rte_mbuf_timestamp_t *);
			frames[i].has_ts = 1;
		} else {
			frames[i].ts = 0;
			frames[i].has_ts = 0;
		}
	}
	return n;
}

int ft_errno(void)
{
	return rte_errno;
}
