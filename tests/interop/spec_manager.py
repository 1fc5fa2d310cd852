#!/usr/bin/env python3
"""A minimal manager written from the protocol spec alone (agent与manager接口协议 v1.1, docs/protocol.md).

It knows nothing of muster: it sends the spec's UDP multicast query
    {"api_version": 1, "data": {"manager_ip": ..., "manager_port": ..., "url": "/heartbeat" | "/resource"}}
one url per datagram, serves POST /heartbeat and POST /resource (answering 200 with an empty body),
checks each body strictly against the spec's field list and JSON types, and after --rounds rounds
writes a JSON summary {"heartbeats": [...], "resources": [...], "errors": [...], ...} to --out.

Typing rules taken from the spec: "int" and "uint64_t" are JSON integers (never booleans or
strings; uint64_t and counts are >= 0), "uint16_t" is an integer in 0..65535, "double" is any JSON
number, "string" is a JSON string, host_ip is dotted-decimal IPv4. Sensor readings (temperature,
voltage, current, power, the GPU usage/memory figures and a component's resource figures) may be
null: a board without that sensor cannot report one. Fields the spec does not name are extensions
and are ignored (listed under "extra_fields" in the summary, never counted as errors).

Python standard library only.
"""

import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_VERSION = 1

# --- the spec's field lists, written out ------------------------------------------------------
# Type tags: int (integer), u64 (integer >= 0), u16 (integer 0..65535), double (number),
# str (string), ipv4 (dotted-decimal string), and the same with '?' = may also be null.
# A dict is a nested object, a one-element list is an array of that shape.

HEARTBEAT_GPU = {'index': 'int', 'name': 'str'}

HEARTBEAT_DATA = {
    'box_id': 'int',
    'slot_id': 'int',
    'cpu_id': 'int',
    'srio_id': 'int',
    'host_ip': 'ipv4',
    'hostname': 'str',
    'service_port': 'u16',
    'box_type': 'str',
    'board_type': 'str',
    'cpu_type': 'str',
    'os_type': 'str',
    'resource_type': 'str',
    'cpu_arch': 'str',
    'gpu': [HEARTBEAT_GPU],
}

RESOURCE_CPU = {
    'usage_percent': 'double',
    'load_avg_1m': 'double',
    'load_avg_5m': 'double',
    'load_avg_15m': 'double',
    'core_count': 'int',
    'core_allocated': 'int',
    'temperature': 'double?',
    'voltage': 'double?',
    'current': 'double?',
    'power': 'double?',
}

RESOURCE_MEMORY = {'total': 'u64', 'used': 'u64', 'free': 'u64', 'usage_percent': 'double'}

RESOURCE_NETWORK = {
    'interface': 'str',
    'rx_bytes': 'u64',
    'tx_bytes': 'u64',
    'rx_packets': 'u64',
    'tx_packets': 'u64',
    'rx_errors': 'int',
    'tx_errors': 'int',
}

RESOURCE_DISK = {
    'device': 'str',
    'mount_point': 'str',
    'total': 'u64',
    'used': 'u64',
    'free': 'u64',
    'usage_percent': 'double',
}

RESOURCE_GPU = {
    'index': 'int',
    'name': 'str',
    'compute_usage': 'double?',
    'mem_usage': 'double?',
    'mem_used': 'u64?',
    'mem_total': 'u64?',
    'temperature': 'double?',
    'voltage': 'double?',
    'current': 'double?',
    'power': 'double?',
}

COMPONENT_STATES = ('PENDING', 'RUNNING', 'FAILED', 'STOPPED', 'SLEEPING')

COMPONENT = {
    'instance_id': 'str',
    'uuid': 'str',
    'index': 'int',
    'config': {'name': 'str', 'id': 'str'},
    'state': 'state',
    'resource': {
        'cpu': {'load': 'double?'},
        'memory': {'mem_used': 'u64?', 'mem_limit': 'u64?'},
        'network': {'tx': 'u64?', 'rx': 'u64?'},
    },
}

RESOURCE_DATA = {
    'host_ip': 'ipv4',
    'resource': {
        'cpu': RESOURCE_CPU,
        'memory': RESOURCE_MEMORY,
        'network': [RESOURCE_NETWORK],
        'disk': [RESOURCE_DISK],
        'gpu': [RESOURCE_GPU],
    },
    'component': [COMPONENT],
}

SHAPES = {
    '/heartbeat': {'api_version': 'version', 'data': HEARTBEAT_DATA},
    '/resource': {'api_version': 'version', 'data': RESOURCE_DATA},
}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return (isinstance(v, (int, float))) and not isinstance(v, bool)


def is_ipv4(v):
    if not isinstance(v, str):
        return False
    parts = v.split('.')
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or not p.isascii() or len(p) > 3 or (len(p) > 1 and p[0] == '0'):
            return False
        if int(p) > 255:
            return False
    return True


def check_leaf(tag, v):
    """Returns None when v has the type `tag` names, else what was expected."""
    nullable = tag.endswith('?')
    base = tag.rstrip('?')
    if v is None:
        return None if nullable else f'must be {base}, not null'
    if base == 'version':
        return None if is_int(v) and v == API_VERSION else f'must be {API_VERSION}'
    if base == 'int':
        return None if is_int(v) else 'must be an integer'
    if base == 'u64':
        return None if is_int(v) and 0 <= v < 2**64 else 'must be an integer in 0..2^64-1'
    if base == 'u16':
        return None if is_int(v) and 0 <= v <= 65535 else 'must be an integer in 0..65535'
    if base == 'double':
        return None if is_number(v) else 'must be a number'
    if base == 'str':
        return None if isinstance(v, str) else 'must be a string'
    if base == 'ipv4':
        return None if is_ipv4(v) else 'must be a dotted-decimal IPv4 address'
    if base == 'state':
        return None if v in COMPONENT_STATES else f'must be one of {"/".join(COMPONENT_STATES)}'
    raise ValueError(f'unknown type tag {tag}')


def validate(shape, value, path, errors, extras):
    """Checks value against shape; appends {'field', 'message'} to errors, unknown paths to extras."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            errors.append({'field': path or '/', 'message': 'must be an object'})
            return
        for key, sub in shape.items():
            p = f'{path}/{key}'
            if key not in value:
                errors.append({'field': p, 'message': 'is required'})
                continue
            validate(sub, value[key], p, errors, extras)
        for key in value:
            if key not in shape:
                extras.append(f'{path}/{key}')
    elif isinstance(shape, list):
        if not isinstance(value, list):
            errors.append({'field': path, 'message': 'must be an array'})
            return
        for i, item in enumerate(value):
            validate(shape[0], item, f'{path}/{i}', errors, extras)
    else:
        why = check_leaf(shape, value)
        if why is not None:
            errors.append({'field': path, 'message': why})


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.heartbeats = []
        self.resources = []
        self.errors = []
        self.extra_fields = set()
        self.requests = []


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        server_version = 'spec-manager/1.1'

        def log_message(self, fmt, *args):  # quiet
            pass

        def reply(self, status):
            self.send_response(status)
            self.send_header('Content-Length', '0')
            self.end_headers()

        def do_POST(self):
            url = self.path.split('?', 1)[0]
            length = int(self.headers.get('Content-Length') or 0)
            raw = self.rfile.read(length) if length > 0 else b''
            peer = self.client_address[0]
            with state.lock:
                state.requests.append({'url': url, 'from': peer, 'bytes': len(raw)})
            if url not in SHAPES:
                with state.lock:
                    state.errors.append({'url': url, 'from': peer, 'field': '', 'message': 'unknown url'})
                self.reply(404)
                return
            try:
                body = json.loads(raw.decode('utf-8'))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                with state.lock:
                    state.errors.append({'url': url, 'from': peer, 'field': '/', 'message': f'not JSON: {e}'})
                self.reply(400)
                return
            errors, extras = [], []
            validate(SHAPES[url], body, '', errors, extras)
            with state.lock:
                state.extra_fields.update(f'{url}:{x}' for x in extras)
                if errors:
                    state.errors.extend({'url': url, 'from': peer, **e} for e in errors)
                elif url == '/heartbeat':
                    state.heartbeats.append(body)
                else:
                    state.resources.append(body)
            # Spec: a report is answered 200 with an empty body; a body that breaks the spec gets 400.
            self.reply(400 if errors else 200)

        def do_GET(self):
            self.reply(404)

    return Handler


def iface_address(iface):
    """The IPv4 address to send on and to advertise: --iface must be an IPv4 address here."""
    try:
        socket.inet_aton(iface)
        return iface
    except OSError:
        sys.exit(f'spec_manager: --iface {iface}: give the interface as an IPv4 address')


def main():
    ap = argparse.ArgumentParser(description='minimal manager of the agent/manager protocol v1.1, from the spec alone')
    ap.add_argument('--group', default='239.192.168.80')
    ap.add_argument('--port', type=int, default=3980, help='multicast (query) port')
    ap.add_argument('--iface', default='127.0.0.1', help='IPv4 address of the interface to send on')
    ap.add_argument('--http-port', type=int, default=3926, help='manager_port: where reports are POSTed')
    ap.add_argument('--manager-ip', default=None, help='manager_ip put in queries; default the --iface address')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--interval', type=float, default=1.0, help='seconds between rounds')
    ap.add_argument('--grace', type=float, default=2.0, help='seconds to wait for reports after the last round')
    ap.add_argument('--out', required=True, help='JSON summary file')
    a = ap.parse_args()

    addr = iface_address(a.iface)
    manager_ip = a.manager_ip or addr
    state = State()

    server = ThreadingHTTPServer((addr, a.http_port), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)

    print(f'spec_manager: http {addr}:{a.http_port}, queries to {a.group}:{a.port} via {addr}', file=sys.stderr, flush=True)
    sent = 0
    for r in range(a.rounds):
        for url in ('/heartbeat', '/resource'):  # one url per query
            q = {'api_version': API_VERSION, 'data': {'manager_ip': manager_ip, 'manager_port': a.http_port, 'url': url}}
            sock.sendto(json.dumps(q).encode('utf-8'), (a.group, a.port))
            sent += 1
        if r < a.rounds - 1:
            time.sleep(a.interval)
    time.sleep(a.grace)

    with state.lock:
        summary = {
            'queries_sent': sent,
            'manager_ip': manager_ip,
            'manager_port': a.http_port,
            'heartbeats': state.heartbeats,
            'resources': state.resources,
            'errors': state.errors,
            'extra_fields': sorted(state.extra_fields),
            'requests': state.requests,
        }
    with open(a.out, 'w', encoding='utf-8') as f:
        json.dump(summary, f, ensure_ascii=False, indent=2)
    server.shutdown()
    server.server_close()
    sock.close()
    print(
        f'spec_manager: {len(summary["heartbeats"])} heartbeats, {len(summary["resources"])} resources, '
        f'{len(summary["errors"])} errors',
        file=sys.stderr,
        flush=True,
    )


if __name__ == '__main__':
    main()
