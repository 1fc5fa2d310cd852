/** Address helpers: interface lookup and the source address that routes to a peer. */
import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import os from 'node:os';

export { isIPv4 };

/**
 * The IPv4 address of an interface given by name (`eth0`) or by one of its addresses.
 * @returns the address, or undefined when no such interface is up with an IPv4 address.
 */
export function interfaceAddress(spec: string): string | undefined {
  const ifaces = os.networkInterfaces();
  if (isIPv4(spec)) {
    for (const addrs of Object.values(ifaces)) {
      if (addrs?.some((a) => a.family === 'IPv4' && a.address === spec)) return spec;
    }
    return undefined;
  }
  return ifaces[spec]?.find((a) => a.family === 'IPv4')?.address;
}

/** The first non-internal IPv4 address of this machine, or 127.0.0.1 when there is none. */
export function primaryAddress(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    const a = addrs?.find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return a.address;
  }
  return '127.0.0.1';
}

/**
 * The local address the kernel would use to reach `remoteIp` (the interface that routes to it),
 * found by connecting a UDP socket, which sends nothing.
 * @throws when there is no route to `remoteIp`.
 */
export function routeSourceAddress(remoteIp: string, port = 9): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.on('error', (err) => {
      sock.close();
      reject(err);
    });
    sock.connect(port, remoteIp, () => {
      const { address } = sock.address();
      sock.close();
      resolve(address);
    });
  });
}
