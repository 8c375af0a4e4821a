// The spec as the schema admits it (before defaults). schema/f3s.schema.json is the source of truth;
// these types mirror it for the code that reads a spec that has already passed the schema.

export interface Spec {
  version: 1;
  domain: string;
  pki: {
    organization: string;
    country?: string;
    state?: string;
    locality?: string;
    caCommonName: string;
    keyType?: "rsa" | "ecdsa-p256" | "ecdsa-p384";
    keyBits?: 2048 | 3072 | 4096;
    validityDays?: number;
  };
  storage: {
    interface: string;
    vip: { address: string; hostname: string; aliases?: string[]; vhid: number; password: string; advbase?: number };
    nodes: { name: string; role: "primary" | "standby"; address: string; replicationAddress: string; advskew?: number; sshHost?: string }[];
    nfs: { root: string; dataset: string; tlsPort: number; rootAccess?: "squash" | "root"; exportDatasets?: boolean };
    replication: {
      port: number;
      sinkRoot: string;
      datasets: { name: string; interval: string; keep: number; jobName?: string }[];
    };
    encryption: { keyDirectory: string; keyDevice?: string; keyFsType?: "ufs" | "msdosfs"; roots: { dataset: string; key: string }[] };
    failback?: { enabled?: boolean };
  };
  clients: {
    name: string;
    os?: "rocky" | "fedora" | "debian" | "ubuntu";
    mounts: { export: string; mountpoint: string; options?: string[] }[];
    restartStuckPods?: boolean;
    redirectNfsPort?: boolean;
    kubernetesNodeName?: string;
    kubeconfig?: string;
    sshHost?: string;
    slot?: number;
    rootAccess?: "squash" | "root";
  }[];
  overrides?: {
    hosts?: string[];
    roles?: ("storage" | "client" | "member")[];
    files?: { path: string; mode?: string; content?: string; source?: string }[];
    patches?: { path: string; find: string; replace: string }[];
  }[];
  monitoring?: { storageTextfileDirectory?: string; clientTextfileDirectory?: string; maxReplicationLag?: string };
  members?: { name: string; sshHost?: string }[];
}
