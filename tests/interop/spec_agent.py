#!/usr/bin/env python3
"""A minimal agent written from the protocol spec alone (agent与manager接口协议 v1.1, docs/protocol.md).

It knows nothing of muster: it joins the multicast group on one interface, and answers each valid
query {"api_version": 1, "data": {"manager_ip", "manager_port", "url"}} by POSTing a heartbeat or
a resource report, with every field the spec names and realistic fixed figures, to
http://manager_ip:manager_port/url. Invalid datagrams are ignored. Runs until killed.

The figures are fixed so that a test can check them on the other side: cpu usage 12.5 %, memory
usage 37.5 %, cpu temperature 47.5 °C, 2 NICs, 1 disk, 1 GPU, no components.

Python standard library only.
"""

import argparse
import json
import signal
import socket
import struct
import sys
import threading
import urllib.error
import urllib.request

API_VERSION = 1
GIB = 1024**3


def is_ipv4(v):
    if not isinstance(v, str):
        return False
    parts = v.split('.')
    return len(parts) == 4 and all(p.isdigit() and p.isascii() and len(p) <= 3 and int(p) <= 255 for p in parts)


def parse_query(raw):
    """Returns (manager_ip, manager_port, url) of a valid query, else None."""
    try:
        q = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(q, dict) or q.get('api_version') != API_VERSION or isinstance(q.get('api_version'), bool):
        return None
    d = q.get('data')
    if not isinstance(d, dict):
        return None
    ip, port, url = d.get('manager_ip'), d.get('manager_port'), d.get('url')
    if not is_ipv4(ip):
        return None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        return None
    if url not in ('/heartbeat', '/resource'):
        return None
    return ip, port, url


class SpecAgent:
    def __init__(self, a):
        self.a = a
        self.hostname = a.hostname or f'spec-agent-{a.box}-{a.slot}-{a.cpu}'

    def heartbeat(self):
        a = self.a
        return {
            'api_version': API_VERSION,
            'data': {
                'box_id': a.box,
                'slot_id': a.slot,
                'cpu_id': a.cpu,
                'srio_id': a.srio,
                'host_ip': a.host_ip,
                'hostname': self.hostname,
                'service_port': a.service_port,
                'box_type': '计算I型',
                'board_type': 'GPU',
                'cpu_type': 'Phytium,D2000/8',
                'os_type': 'Kylin Linux Advanced Server V10',
                'resource_type': 'GPU I',
                'cpu_arch': 'aarch64',
                'gpu': [{'index': 0, 'name': 'JM9271'}],
            },
        }

    def resource(self):
        total = 16 * GIB
        used = 6 * GIB  # 37.5 %
        disk_total = 128 * GIB
        disk_used = 32 * GIB
        return {
            'api_version': API_VERSION,
            'data': {
                'host_ip': self.a.host_ip,
                'resource': {
                    'cpu': {
                        'usage_percent': 12.5,
                        'load_avg_1m': 0.42,
                        'load_avg_5m': 0.37,
                        'load_avg_15m': 0.31,
                        'core_count': 8,
                        'core_allocated': 0,
                        'temperature': 47.5,
                        'voltage': 0.9,
                        'current': 3.25,
                        'power': 15.0,
                    },
                    'memory': {'total': total, 'used': used, 'free': total - used, 'usage_percent': 37.5},
                    'network': [
                        {
                            'interface': 'eth0',
                            'rx_bytes': 1234567890,
                            'tx_bytes': 987654321,
                            'rx_packets': 1543210,
                            'tx_packets': 1234560,
                            'rx_errors': 0,
                            'tx_errors': 0,
                        },
                        {
                            'interface': 'eth1',
                            'rx_bytes': 2345678,
                            'tx_bytes': 1234567,
                            'rx_packets': 23456,
                            'tx_packets': 12345,
                            'rx_errors': 1,
                            'tx_errors': 0,
                        },
                    ],
                    'disk': [
                        {
                            'device': '/dev/nvme0n1p2',
                            'mount_point': '/',
                            'total': disk_total,
                            'used': disk_used,
                            'free': disk_total - disk_used,
                            'usage_percent': 25.0,
                        }
                    ],
                    'gpu': [
                        {
                            'index': 0,
                            'name': 'JM9271',
                            'compute_usage': 5.0,
                            'mem_usage': 12.5,
                            'mem_used': 1 * GIB,
                            'mem_total': 8 * GIB,
                            'temperature': 52.0,
                            'voltage': 0.85,
                            'current': 10.5,
                            'power': 35.0,
                        }
                    ],
                },
                'component': [],
            },
        }

    def report(self, ip, port, url):
        body = self.heartbeat() if url == '/heartbeat' else self.resource()
        data = json.dumps(body, ensure_ascii=False).encode('utf-8')
        req = urllib.request.Request(
            f'http://{ip}:{port}{url}', data=data, method='POST', headers={'Content-Type': 'application/json'}
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as res:
                res.read()
                status = res.status
        except urllib.error.HTTPError as e:
            status = e.code
        except (urllib.error.URLError, OSError) as e:
            print(f'spec_agent: {url} to {ip}:{port} failed: {e}', file=sys.stderr, flush=True)
            return
        if status != 200:
            print(f'spec_agent: {url} to {ip}:{port} answered {status}', file=sys.stderr, flush=True)

    def run(self):
        a = self.a
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, 'SO_REUSEPORT'):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # Bound to the group address: only datagrams sent to the group arrive here.
        sock.bind((a.group, a.port))
        mreq = struct.pack('4s4s', socket.inet_aton(a.group), socket.inet_aton(a.iface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        print(f'spec_agent: joined {a.group}:{a.port} on {a.iface} as {a.box}-{a.slot}-{a.cpu}', file=sys.stderr, flush=True)
        while True:
            raw, _ = sock.recvfrom(65535)
            q = parse_query(raw)
            if q is None:
                continue
            threading.Thread(target=self.report, args=q, daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description='minimal agent of the agent/manager protocol v1.1, from the spec alone')
    ap.add_argument('--group', default='239.192.168.80')
    ap.add_argument('--port', type=int, default=3980, help='multicast (query) port')
    ap.add_argument('--iface', default='127.0.0.1', help='IPv4 address of the interface to join on')
    ap.add_argument('--box', type=int, required=True)
    ap.add_argument('--slot', type=int, required=True)
    ap.add_argument('--cpu', type=int, required=True)
    ap.add_argument('--srio', type=int, default=0)
    ap.add_argument('--host-ip', required=True)
    ap.add_argument('--hostname', default=None)
    ap.add_argument('--service-port', type=int, default=23980)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        SpecAgent(a).run()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
