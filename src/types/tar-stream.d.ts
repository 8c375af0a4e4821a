// The part of tar-stream 3's API that f3s-gen uses (the package ships no types of its own).
declare module "tar-stream" {
  import { Readable } from "node:stream";
  export interface Headers {
    name: string;
    size?: number;
    mode?: number;
    mtime?: Date;
    type?: "file";
    uid?: number;
    gid?: number;
    uname?: string;
    gname?: string;
  }
  export interface Pack extends Readable {
    entry(header: Headers, buffer: Buffer, callback?: (err?: Error | null) => void): void;
    finalize(): void;
  }
  export function pack(): Pack;
}
