// BullMQ's job cycle, the peer scripts/bench-bullmq.sh measures `callq bench --core` against:
// bulk-add N jobs to a fresh queue, then one Worker at concurrency 50 fetches and completes
// them (an empty processor; default job options, so completed jobs are kept). Prints one JSON
// line: the cycle rate (N over add + work time), the worker's rate alone, and the CPU time of
// Redis' main thread per job (INFO cpu before and after).
// Usage: node cycle.mjs --redis-url redis://127.0.0.1:6379 [--jobs 20000] [--concurrency 50]
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const opt = { "redis-url": "redis://127.0.0.1:6379", jobs: "20000", concurrency: "50" };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "");
  if (!(key in opt) || argv[i + 1] === undefined) {
    console.error(`unknown or incomplete option ${argv[i]}`);
    process.exit(2);
  }
  opt[key] = argv[i + 1];
}
const jobs = Number(opt.jobs);
const concurrency = Number(opt.concurrency);
const url = new URL(opt["redis-url"]);
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const name = `bench${process.pid}`;

const admin = new IORedis(connection);
const mainCpu = async () => {
  const info = await admin.info("cpu");
  const field = (k) => Number(info.match(new RegExp(`^${k}:([0-9.]+)`, "m"))?.[1]);
  return field("used_cpu_user_main_thread") + field("used_cpu_sys_main_thread");
};

const queue = new Queue(name, { connection });
await queue.waitUntilReady();
const worker = new Worker(name, async () => {}, { connection, concurrency, autorun: false });
await worker.waitUntilReady();
let done = 0;
let allDone;
const finished = new Promise((resolve) => (allDone = resolve));
worker.on("completed", () => {
  done += 1;
  if (done === jobs) allDone();
});
worker.on("failed", (job, err) => {
  console.error(`job ${job?.id} failed: ${err}`);
  process.exit(1);
});

const cpu0 = await mainCpu();
const t0 = performance.now();
for (let i = 0; i < jobs; i += 1000) {
  const batch = [];
  for (let j = i; j < Math.min(jobs, i + 1000); j++) batch.push({ name: "cycle", data: { n: j } });
  await queue.addBulk(batch);
}
const t1 = performance.now();
const running = worker.run();
await finished;
const t2 = performance.now();
const cpu1 = await mainCpu();

await worker.close();
await running;
await queue.obliterate({ force: true });
await queue.close();
await admin.quit();

const addS = (t1 - t0) / 1000;
const workS = (t2 - t1) / 1000;
console.log(
  JSON.stringify({
    jobs,
    concurrency,
    add_s: addS,
    work_s: workS,
    jobs_per_s: jobs / (addS + workS),
    worker_jobs_per_s: jobs / workS,
    redis_cpu_us_per_job: Number.isFinite(cpu1 - cpu0) ? ((cpu1 - cpu0) * 1e6) / jobs : null,
  }),
);
