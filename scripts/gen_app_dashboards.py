#!/usr/bin/env python3
"""Writes the application-metrics Grafana dashboards (deploy/grafana/
flowtap-{dns,http,tls,tcp,applications}.json). Every query uses only
metrics flowtap exposes (engine's dashboard test checks it). Re-run after
changing a panel: python3 scripts/gen_app_dashboards.py"""

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = {"type": "prometheus", "uid": "${datasource}"}
RI = "[$__rate_interval]"
I = 'instance=~"$instance"'


NX = ',rcode="NXDOMAIN"'
SF = ',rcode="SERVFAIL"'
X5 = ',status_class="5xx"'
DNS_LABELS = 'label=~"dns_.*"'


def sel(extra=""):
    return "{" + I + ("," + extra if extra else "") + "}"


class Dash:
    def __init__(self, uid, title, description, variables=()):
        self.uid, self.title, self.description = uid, title, description
        self.panels, self.next_id, self.x, self.y, self.row_h = [], 1, 0, 0, 0
        self.variables = list(variables)

    def row(self, title):
        if self.x:
            self.y += self.row_h
            self.x, self.row_h = 0, 0
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.y += 1

    def panel(self, kind, title, targets, unit="short", w=12, h=8, description="", options=None, instant=False):
        if self.x + w > 24:
            self.y += self.row_h
            self.x, self.row_h = 0, 0
        p = {"type": kind, "title": title, "id": self.next_id, "description": description, "datasource": DS,
             "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
             "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
             "options": options or {},
             "targets": [dict({"refId": chr(65 + i), "expr": e, "legendFormat": l, "datasource": DS},
                              **({"instant": True, "format": "table"} if instant else {}))
                         for i, (e, l) in enumerate(targets)]}
        self.panels.append(p)
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)

    def write(self, name):
        templating = [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}},
            {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
             "query": {"query": "label_values(flowtap_workers, instance)", "refId": "instance"},
             "definition": "label_values(flowtap_workers, instance)", "includeAll": True, "multi": True,
             "allValue": ".*", "refresh": 2, "current": {}},
        ]
        for v in self.variables:
            templating.append({"name": v[0], "label": v[1], "type": "query", "datasource": DS,
                               "query": {"query": v[2], "refId": v[0]}, "definition": v[2], "includeAll": True,
                               "multi": True, "allValue": ".*", "refresh": 2, "current": {}})
        d = {"__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                           "pluginId": "prometheus", "pluginName": "Prometheus"}],
             "title": self.title, "uid": self.uid, "tags": ["flowtap"], "timezone": "utc", "schemaVersion": 39,
             "version": 1, "editable": True, "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
             "description": self.description, "templating": {"list": templating}, "panels": self.panels}
        with open(os.path.join(ROOT, "deploy", "grafana", name), "w") as f:
            json.dump(d, f, indent=1)
            f.write("\n")


def q(p, metric, by, extra=""):
    return f"histogram_quantile({p}, sum by ({by}le) (rate({metric}_bucket{sel(extra)}{RI})))"


def dns():
    s = 'server=~"$server"'
    d = Dash("flowtap-dns", "flowtap — DNS", "DNS KPIs flowtap counts from mirrored traffic: rate, latency, "
             "error codes, top servers and names ([app_metrics]).",
             [("server", "Server", "label_values(flowtap_dns_queries_total, server)")])
    d.row("Rate and errors")
    d.panel("timeseries", "Queries/s by server",
            [(f"sum by (server) (rate(flowtap_dns_queries_total{sel(s)}{RI}))", "{{server}}")], "reqps")
    d.panel("timeseries", "Responses/s by rcode",
            [(f"sum by (rcode) (rate(flowtap_dns_responses_total{sel(s)}{RI}))", "{{rcode}}")], "reqps")
    d.panel("timeseries", "NXDOMAIN and SERVFAIL share of responses",
            [(f'sum by (server) (rate(flowtap_dns_responses_total{sel(s + NX)}{RI})) / '
              f"sum by (server) (rate(flowtap_dns_responses_total{sel(s)}{RI}))", "NXDOMAIN {{server}}"),
             (f'sum by (server) (rate(flowtap_dns_responses_total{sel(s + SF)}{RI})) / '
              f"sum by (server) (rate(flowtap_dns_responses_total{sel(s)}{RI}))", "SERVFAIL {{server}}")],
            "percentunit")
    d.panel("timeseries", "Unanswered queries/s by server",
            [(f"sum by (server) (rate(flowtap_dns_unanswered_total{sel(s)}{RI}))", "{{server}}")], "reqps")
    d.row("Latency")
    d.panel("timeseries", "Latency percentiles (all servers)",
            [(q(0.5, "flowtap_dns_latency_seconds", "", s), "p50"),
             (q(0.95, "flowtap_dns_latency_seconds", "", s), "p95"),
             (q(0.99, "flowtap_dns_latency_seconds", "", s), "p99")], "s")
    d.panel("timeseries", "p95 latency by server",
            [(q(0.95, "flowtap_dns_latency_seconds", "server, ", s), "{{server}}")], "s")
    d.row("Top")
    d.panel("bargauge", "Top servers (queries in range)",
            [(f"topk(10, sum by (server) (increase(flowtap_dns_queries_total{sel()}[$__range])))", "{{server}}")],
            instant=True, options={"displayMode": "basic", "orientation": "horizontal"})
    d.panel("bargauge", "Top queried names (in range; other = beyond the label limit)",
            [(f"topk(20, sum by (name) (increase(flowtap_dns_query_names_total{sel()}[$__range])))", "{{name}}")],
            instant=True, options={"displayMode": "basic", "orientation": "horizontal"})
    d.panel("timeseries", "Queries/s by type",
            [(f"sum by (qtype) (rate(flowtap_dns_queries_total{sel(s)}{RI}))", "{{qtype}}")], "reqps")
    d.panel("timeseries", "Label values folded into other/s",
            [(f'sum by (label) (rate(flowtap_app_metric_label_folded_total{sel(DNS_LABELS)}{RI}))',
              "{{label}}")], "ops")
    d.write("flowtap-dns.json")


def http():
    h = 'host=~"$host"'
    d = Dash("flowtap-http", "flowtap — HTTP", "HTTP RED (rate, errors, duration) per host from mirrored traffic.",
             [("host", "Host", "label_values(flowtap_http_requests_total, host)")])
    d.row("Rate, errors, duration")
    d.panel("timeseries", "Requests/s by host (top 10)",
            [(f"topk(10, sum by (host) (rate(flowtap_http_requests_total{sel(h)}{RI})))", "{{host}}")], "reqps")
    d.panel("timeseries", "5xx share by host (top 10)",
            [(f'topk(10, sum by (host) (rate(flowtap_http_requests_total{sel(h + X5)}{RI})) / '
              f"sum by (host) (rate(flowtap_http_requests_total{sel(h)}{RI})))", "{{host}}")], "percentunit")
    d.panel("timeseries", "p95 duration by host (top 10)",
            [(f"topk(10, {q(0.95, 'flowtap_http_latency_seconds', 'host, ', h)})", "{{host}}")], "s")
    d.panel("timeseries", "Requests/s by status class",
            [(f"sum by (status_class) (rate(flowtap_http_requests_total{sel(h)}{RI}))", "{{status_class}}")],
            "reqps")
    d.row("Volume")
    d.panel("timeseries", "Response body bytes/s by host (top 10)",
            [(f"topk(10, sum by (host) (rate(flowtap_http_response_body_bytes_total{sel(h)}{RI})))", "{{host}}")],
            "Bps")
    d.panel("timeseries", "Request body bytes/s by host (top 10)",
            [(f"topk(10, sum by (host) (rate(flowtap_http_request_body_bytes_total{sel(h)}{RI})))", "{{host}}")],
            "Bps")
    d.panel("timeseries", "Requests/s by method",
            [(f"sum by (method) (rate(flowtap_http_requests_total{sel(h)}{RI}))", "{{method}}")], "reqps")
    d.panel("timeseries", "Duration percentiles (selected hosts)",
            [(q(0.5, "flowtap_http_latency_seconds", "", h), "p50"),
             (q(0.95, "flowtap_http_latency_seconds", "", h), "p95"),
             (q(0.99, "flowtap_http_latency_seconds", "", h), "p99")], "s")
    d.write("flowtap-http.json")


def tls():
    d = Dash("flowtap-tls", "flowtap — TLS", "TLS handshakes, versions, SNI and certificates about to expire.")
    d.row("Handshakes")
    d.panel("timeseries", "Handshakes/s by version",
            [(f"sum by (version) (rate(flowtap_tls_handshakes_total{sel()}{RI}))", "{{version}}")], "ops")
    d.panel("timeseries", "Handshakes/s by cipher suite",
            [(f"sum by (cipher) (rate(flowtap_tls_handshakes_total{sel()}{RI}))", "{{cipher}}")], "ops")
    d.panel("bargauge", "Top SNI (in range)",
            [(f"topk(20, sum by (sni) (increase(flowtap_tls_sni_total{sel()}[$__range])))", "{{sni}}")],
            instant=True, options={"displayMode": "basic", "orientation": "horizontal"})
    d.panel("timeseries", "ServerHellos/s by ALPN",
            [(f"sum by (alpn) (rate(flowtap_tls_alpn_total{sel()}{RI}))", "{{alpn}}")], "ops")
    d.panel("timeseries", "Handshake latency (ClientHello to ServerHello)",
            [(q(0.5, "flowtap_tls_handshake_latency_seconds", ""), "p50"),
             (q(0.95, "flowtap_tls_handshake_latency_seconds", ""), "p95")], "s")
    d.row("Certificates")
    d.panel("table", "Certificates expiring soon (days left; negative: expired)",
            [(f"sort(min by (subject) (flowtap_tls_certificate_expiry_timestamp_seconds{sel()}) - time()) / 86400",
              "{{subject}}")], "d", w=24, instant=True)
    d.write("flowtap-tls.json")


def tcp():
    s = 'server=~"$server"'
    d = Dash("flowtap-tcp", "flowtap — TCP health", "TCP per server endpoint: attempts, refusals, handshake "
             "delays on each side of the mirror, retransmissions, zero windows, application response time.",
             [("server", "Server", "label_values(flowtap_tcp_connections_total, server)")])
    d.row("Connections")
    d.panel("timeseries", "Connection attempts/s by server:port (top 10)",
            [(f"topk(10, sum by (server, port) (rate(flowtap_tcp_connection_attempts_total{sel(s)}{RI})))",
              "{{server}}:{{port}}")], "ops")
    d.panel("timeseries", "Refused and unanswered attempts/s",
            [(f"sum by (server, port) (rate(flowtap_tcp_connections_refused_total{sel(s)}{RI})) > 0",
              "refused {{server}}:{{port}}"),
             (f"sum by (server, port) (rate(flowtap_tcp_connections_unanswered_total{sel(s)}{RI})) > 0",
              "unanswered {{server}}:{{port}}")], "ops")
    d.panel("timeseries", "Retransmitted segments per connection",
            [(f"sum by (direction) (rate(flowtap_tcp_retransmitted_segments_total{sel(s)}{RI})) / ignoring(direction) "
              f"group_left sum(rate(flowtap_tcp_connections_total{sel(s)}{RI}))", "{{direction}}")], "short")
    d.panel("timeseries", "Zero-window segments/s by direction",
            [(f"sum by (direction) (rate(flowtap_tcp_zero_window_segments_total{sel(s)}{RI}))", "{{direction}}")],
            "ops")
    d.row("Delays")
    d.panel("timeseries", "p95 server-side handshake delay (SYN to SYN-ACK)",
            [(f"topk(10, {q(0.95, 'flowtap_tcp_server_handshake_delay_seconds', 'server, port, ', s)})",
              "{{server}}:{{port}}")], "s")
    d.panel("timeseries", "p95 client-side handshake delay (SYN-ACK to ACK)",
            [(f"topk(10, {q(0.95, 'flowtap_tcp_client_handshake_delay_seconds', 'server, port, ', s)})",
              "{{server}}:{{port}}")], "s")
    d.panel("timeseries", "p95 application response time",
            [(f"topk(10, {q(0.95, 'flowtap_tcp_app_response_seconds', 'server, port, ', s)})",
              "{{server}}:{{port}}")], "s")
    d.panel("timeseries", "Mean application response time",
            [(f"sum by (server, port) (rate(flowtap_tcp_app_response_seconds_sum{sel(s)}{RI})) / "
              f"sum by (server, port) (rate(flowtap_tcp_app_response_seconds_count{sel(s)}{RI}))",
              "{{server}}:{{port}}")], "s")
    d.write("flowtap-tcp.json")


def applications():
    p = 'proto=~"$proto"'
    d = Dash("flowtap-applications", "flowtap — applications and databases",
             "Every protocol's transactions (SQL verbs, Redis commands, AMQP methods, ...), errors and latency; "
             "traffic per application protocol.",
             [("proto", "Protocol", "label_values(flowtap_app_transactions_total, proto)")])
    d.row("Transactions")
    d.panel("timeseries", "Transactions/s by protocol and outcome",
            [(f"sum by (proto, outcome) (rate(flowtap_app_transactions_total{sel(p)}{RI}))", "{{proto}} {{outcome}}")],
            "ops")
    d.panel("timeseries", "Statements/s by operation (top 10)",
            [(f"topk(10, sum by (proto, operation) (rate(flowtap_app_transactions_total{sel(p)}{RI})))",
              "{{proto}} {{operation}}")], "ops")
    d.panel("timeseries", "Errors/s by code",
            [(f"sum by (proto, code) (rate(flowtap_app_transaction_errors_total{sel(p)}{RI}))", "{{proto}} {{code}}")],
            "ops")
    d.panel("timeseries", "p95 latency by protocol and operation (top 10)",
            [(f"topk(10, {q(0.95, 'flowtap_app_transaction_latency_seconds', 'proto, operation, ', p)})",
              "{{proto}} {{operation}}")], "s")
    d.row("Traffic by application protocol")
    d.panel("timeseries", "Bytes/s by application protocol",
            [(f"sum by (proto) (rate(flowtap_app_proto_bytes_total{sel()}{RI}))", "{{proto}}")], "Bps")
    d.panel("timeseries", "Flows ended/s by application protocol",
            [(f"sum by (proto) (rate(flowtap_app_proto_flows_total{sel()}{RI}))", "{{proto}}")], "ops")
    d.panel("timeseries", "Packets/s by application protocol and direction",
            [(f"sum by (proto, direction) (rate(flowtap_app_proto_packets_total{sel()}{RI}))",
              "{{proto}} {{direction}}")], "pps")
    d.panel("table", "Bounded labels: values kept, limit, folded",
            [(f"max by (label) (flowtap_app_metric_label_values{sel()})", "kept"),
             (f"max by (label) (flowtap_app_metric_label_limit{sel()})", "limit"),
             (f"sum by (label) (flowtap_app_metric_label_folded_total{sel()})", "folded"),
             (f"sum by (label) (flowtap_app_metric_label_demoted_total{sel()})", "demoted")],
            instant=True)
    d.write("flowtap-applications.json")


if __name__ == "__main__":
    dns()
    http()
    tls()
    tcp()
    applications()
