// IPv4 arithmetic for the checks the schema cannot express (is the VIP inside the node's subnet?).

export function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function parsePrefix(cidr: string): { address: string; prefix: number } {
  const [address, prefix] = cidr.split("/");
  return { address: address!, prefix: Number(prefix) };
}

export function subnetOf(cidr: string): { network: number; broadcast: number; prefix: number } {
  const { address, prefix } = parsePrefix(cidr);
  const size = 2 ** (32 - prefix);
  const network = Math.floor(ipv4ToInt(address) / size) * size;
  return { network, broadcast: network + size - 1, prefix };
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}
