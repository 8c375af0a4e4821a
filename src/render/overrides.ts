// Applies the spec's overrides to one host's rendered files: patches change generated files, extra
// files are added. Whatever no longer fits (a patch whose text the generated file lacks after an
// f3s-gen update, an extra file where f3s-gen now writes one, a drop-in for a unit the host does not
// have) is a diagnostic at the override's line: the build stops before writing anything.
import { error, type Diagnostic } from "../diag/diagnostic.js";
import { DROP_IN, overridesFor } from "../spec/overrides.js";
import type { HostRef, Model } from "../spec/model.js";

interface File {
  path: string;
  mode: number;
  content: Buffer;
}

const count = (text: string, find: string) => text.split(find).length - 1;

export function applyOverrides<F extends File>(model: Model, host: HostRef, generated: F[]): { files: F[]; problems: Diagnostic[] } {
  const problems: Diagnostic[] = [];
  const mine = overridesFor(model.overrides, host.name, host.role);
  if (!mine.length) return { files: generated, problems };
  const files = generated.map((f) => ({ ...f }));
  const byPath = new Map(files.map((f) => [f.path, f]));
  for (const o of mine) {
    for (const p of o.patches) {
      // Patches run before any extra file is added: byPath holds only generated files here.
      const target = byPath.get(p.path);
      if (!target) {
        problems.push(error("override-patch", `${p.pointer}/path`, `${host.name} has no generated file /${p.path} (any more) to patch`, `f3s-gen show ${host.name} lists its files; an extra file of your own goes under files:`));
        continue;
      }
      const text = target.content.toString("utf8");
      const n = count(text, p.find);
      if (n !== 1) {
        problems.push(
          error(
            "override-patch",
            `${p.pointer}/find`,
            n === 0 ? `this patch no longer applies to /${p.path} on ${host.name}: its text is not there (f3s-gen changed the file?)` : `this text occurs ${n} times in /${p.path} on ${host.name}; a patch replaces exactly one`,
            n === 0 ? `compare with f3s-gen show ${host.name} --cat /${p.path}, and update find:` : "make find longer, so that it is unique",
          ),
        );
        continue;
      }
      target.content = Buffer.from(text.replace(p.find, () => p.replace));
    }
  }
  for (const o of mine) {
    for (const f of o.files) {
      if (byPath.has(f.path)) {
        const generatedHere = generated.some((g) => g.path === f.path);
        problems.push(
          error(
            "override-file",
            `${f.pointer}/path`,
            generatedHere ? `f3s-gen generates /${f.path} on ${host.name}: an extra file cannot replace it` : `/${f.path} is given twice for ${host.name}`,
            generatedHere ? "change a generated file with patches: (find, replace)" : "keep one of the two",
          ),
        );
        continue;
      }
      const unit = DROP_IN.exec(f.path)?.[1];
      if (unit !== undefined && !generated.some((g) => g.path === `etc/systemd/system/${unit}`)) {
        problems.push(error("override-drop-in", `${f.pointer}/path`, `${host.name} has no unit ${unit} from f3s-gen for this drop-in`, `f3s-gen show ${host.name} lists its units (/etc/systemd/system/...)`));
        continue;
      }
      const file = { ...files[0]!, path: f.path, mode: f.mode, content: f.content } as F;
      files.push(file);
      byPath.set(f.path, file);
    }
  }
  return { files, problems };
}

/** The drop-ins a host gets from overrides, for activation's systemd reload. */
export function dropInsOf(model: Model, host: HostRef): string[] {
  return overridesFor(model.overrides, host.name, host.role)
    .flatMap((o) => o.files.map((f) => f.path))
    .filter((p) => DROP_IN.test(p))
    .sort();
}
