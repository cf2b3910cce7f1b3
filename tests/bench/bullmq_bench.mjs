// bullmq_bench.mjs - the BullMQ side of `scripts/bench queue` (part 3): the
// same workload as tripgen's no-op end-to-end run, on the same redis-server.
//
// Run as two processes, like tripgen's enqueue tool and worker, so the peak
// RSS reported is the worker's alone:
//   node bullmq_bench.mjs enqueue --socket SOCK --jobs N --trip TRIP.json
//     queue.addBulk of N jobs (1000 per call) whose data is the trip, each with
//     removeOnComplete; prints bullmq_enqueue_seconds, bullmq_enqueue_jobs_per_s.
//   node bullmq_bench.mjs work --socket SOCK --jobs N [--concurrency 50] [--timeout S]
//     one Worker with a no-op async processor; times from the Worker's creation
//     until N `completed` events; prints bullmq_seconds, bullmq_jobs_per_s,
//     bullmq_peak_rss_mb (process.resourceUsage().maxRSS, KiB) and
//     bullmq_worker_cpu_s (the process's user + system CPU time).
// Both print bullmq_version. Errors go to stderr with exit status 1.
import { Queue, Worker } from "bullmq";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const QUEUE = "bench";
const CHUNK = 1000;

function parseArgs(argv) {
  const a = { phase: argv[0], socket: "", jobs: 0, trip: "", concurrency: 50, timeout: 300 };
  for (let i = 1; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, ""), v = argv[i + 1];
    if (!(k in a) || v === undefined) throw new Error(`bad argument ${argv[i]}`);
    a[k] = typeof a[k] === "number" ? Number(v) : v;
  }
  if (!["enqueue", "work"].includes(a.phase) || !a.socket || !(a.jobs > 0) ||
      (a.phase === "enqueue" && !a.trip))
    throw new Error("usage: bullmq_bench.mjs enqueue|work --socket SOCK --jobs N " +
                    "[--trip FILE] [--concurrency C] [--timeout S]");
  return a;
}

// BullMQ wants maxRetriesPerRequest null on a Worker's connection
const connection = (a) => ({ path: a.socket, maxRetriesPerRequest: null });

async function enqueue(a) {
  const trip = JSON.parse(readFileSync(a.trip, "utf8"));
  const queue = new Queue(QUEUE, { connection: connection(a) });
  await queue.waitUntilReady();
  const t0 = performance.now();
  for (let done = 0; done < a.jobs; done += CHUNK) {
    const n = Math.min(CHUNK, a.jobs - done);
    await queue.addBulk(Array.from({ length: n }, () => (
      { name: "trip", data: trip, opts: { removeOnComplete: true } })));
  }
  const secs = (performance.now() - t0) / 1000;
  const waiting = await queue.getWaitingCount();
  await queue.close();
  if (waiting !== a.jobs) throw new Error(`${waiting} jobs waiting after enqueue, expected ${a.jobs}`);
  console.log(`bullmq_enqueue_seconds=${secs.toFixed(3)}`);
  console.log(`bullmq_enqueue_jobs_per_s=${Math.round(a.jobs / secs)}`);
}

async function work(a) {
  let completed = 0, failed = 0, worker;
  const t0 = performance.now();
  const secs = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(
      `timed out after ${a.timeout} s with ${completed} of ${a.jobs} jobs completed`)),
      a.timeout * 1000);
    worker = new Worker(QUEUE, async () => {}, { connection: connection(a), concurrency: a.concurrency });
    worker.on("completed", () => {
      if (++completed === a.jobs) {
        clearTimeout(timer);
        resolve((performance.now() - t0) / 1000);
      }
    });
    worker.on("failed", (job, err) => { failed++; console.error(`bullmq: job failed: ${err}`); });
    worker.on("error", (err) => console.error(`bullmq: worker error: ${err}`));
  });
  const rssKiB = process.resourceUsage().maxRSS;
  const cpu = process.cpuUsage(); // since the process started, like tripgen's figure
  await worker.close();
  if (failed) throw new Error(`${failed} jobs failed`);
  console.log(`bullmq_seconds=${secs.toFixed(3)}`);
  console.log(`bullmq_jobs_per_s=${Math.round(a.jobs / secs)}`);
  console.log(`bullmq_peak_rss_mb=${(rssKiB / 1024).toFixed(1)}`);
  console.log(`bullmq_worker_cpu_s=${((cpu.user + cpu.system) / 1e6).toFixed(2)}`);
}

try {
  const a = parseArgs(process.argv.slice(2));
  const pkg = new URL("./node_modules/bullmq/package.json", import.meta.url);
  console.log(`bullmq_version=${JSON.parse(readFileSync(pkg, "utf8")).version}`);
  await (a.phase === "enqueue" ? enqueue(a) : work(a));
  process.exit(0);
} catch (err) {
  console.error(`bullmq_bench: ${err.message ?? err}`);
  process.exit(1);
}
