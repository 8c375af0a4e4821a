// Where the time of one warm build goes, stage by stage, in a fresh process (printed as JSON).
const t0 = performance.now();
const { checkSpecFile } = await import("../dist/spec/index.js");
const { openSecrets } = await import("../dist/pki/secrets.js");
const { packHosts } = await import("../dist/pipeline.js");
const t1 = performance.now();
const [spec, secretsDir] = process.argv.slice(2);
const checked = checkSpecFile(spec);
const t2 = performance.now();
const opened = await openSecrets(secretsDir, checked.model, { now: new Date() });
const t3 = performance.now();
await packHosts(checked.model, opened.secrets, () => {});
const t4 = performance.now();
console.log(JSON.stringify({ "load modules": t1 - t0, "check spec": t2 - t1, "open secrets": t3 - t2, "render + pack": t4 - t3 }));
