// The round protocol of many peers in several regions, as a discrete-event simulation over
// a flow-level network (scale/flows.ts). What the cost model cannot say: stragglers that miss
// the deadline, peers sharing their region's server and ocean links, churn and catch-up.
//
// Per peer and round (ARCHITECTURE.md, "Round protocol"): H inner steps, compress, upload to
// its region's servers, wait for the validator's selection, gather, aggregate. The validator
// selects when every contributing peer has uploaded or at the deadline, whichever is first.
import { Network } from "./flows.ts";
import type { GatherDesign } from "./model.ts";

export interface SimConfig {
  seed: number;
  rounds: number;
  peers: number;
  gather: number;
  innerSteps: number;
  stepSeconds: number;
  payload: number;
  /** Design (b)'s aggregate; ignored in (a). */
  aggregate: number;
  design: GatherDesign;
  compressSeconds: number;
  /** Decode-aggregate of G payloads (a), or applying the aggregate (b). */
  aggregateSeconds: number;
  /** Design (b): the aggregator's own decode-aggregate of G payloads. */
  aggregatorSeconds: number;
  selectSeconds: number;
  /** Selection deadline after the previous selection; stragglers past it are left out. */
  deadlineSeconds: number;
  regions: number;
  /** "regional": a server cluster per region, payloads mirrored once into each; "hub": one, in region 0. */
  topology: "regional" | "hub";
  peerUpBytesPerSecond: number;
  peerDownBytesPerSecond: number;
  /** Each region's servers, all clients together (Infinity: unbounded). */
  serverEgressBytesPerSecond: number;
  serverIngressBytesPerSecond: number;
  interRegionBytesPerSecond: number;
  intraLatencySeconds: number;
  interLatencySeconds: number;
  aggregatorBytesPerSecond: number;
  /**
   * "timebox" (the real run: train up to H steps or until the window ends): a slow peer does
   * fewer steps in the usual time; "wait": it does all H and the round waits for it (or the
   * deadline leaves it out).
   */
  stragglers: { probability: number; slowdownMax: number; jitter: number; policy: "timebox" | "wait" };
  churn: {
    leaveProbability: number;
    checkpointBytes: number;
    checkpointEveryRounds: number;
    nullRounds: number;
  };
}

export interface SimResult {
  /** Mean seconds between consecutive selections (how fast the run advances). */
  roundSeconds: number;
  /** Compute seconds / wall seconds, over every peer's completed rounds. */
  utilisation: number;
  /** Bytes each link carried, per round. */
  linkBytesPerRound: Map<string, number>;
  /** Totals by kind, per round. */
  perRound: {
    peerUp: number;
    peerDown: number;
    crossRegion: number;
    serverOut: number;
    serverIn: number;
    aggregator: number;
  };
  selected: number[];
  lateUploads: number;
  leaves: number;
  joins: number;
  catchupBytes: number;
  /** Inner steps not run because of time-boxing, summed over peers and rounds. */
  stepsLost: number;
}

/** mulberry32: small, fast, and the same sequence everywhere for a seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Peer {
  id: number;
  region: number;
  live: boolean;
  /** The round it is in (-1 while a joiner catches up). */
  round: number;
  /** Rounds left before it contributes (a joiner's null rounds). */
  nullLeft: number;
  compute: number;
  wall: number;
}

interface RoundState {
  open: number;
  uploaded: Set<number>;
  selection?: number[];
  selectedAt?: number;
  /** When each payload is readable in each region. */
  avail: Map<number, number[]>;
  aggregateAvail?: number[];
  waiting: (() => void)[];
  deadlineArmed: boolean;
}

export function simulate(c: SimConfig): SimResult {
  const random = rng(c.seed);
  const capacity = new Map<string, number>();
  for (let r = 0; r < c.regions; r++) {
    capacity.set(`srv-out:${r}`, c.serverEgressBytesPerSecond);
    capacity.set(`srv-in:${r}`, c.serverIngressBytesPerSecond);
    for (let s = 0; s < c.regions; s++)
      if (s !== r) capacity.set(`wan:${r}>${s}`, c.interRegionBytesPerSecond);
  }
  capacity.set("agg-down", c.aggregatorBytesPerSecond);
  capacity.set("agg-up", c.aggregatorBytesPerSecond);
  const net = new Network(capacity);
  const linkPeer = (p: Peer) => {
    capacity.set(`up:${p.id}`, c.peerUpBytesPerSecond);
    capacity.set(`down:${p.id}`, c.peerDownBytesPerSecond);
  };
  // Where a region's clients read and write: their own region, or region 0 for a single hub.
  const home = (region: number) => (c.topology === "hub" ? 0 : region);
  const lat = (a: number, b: number) => c.intraLatencySeconds + (a === b ? 0 : c.interLatencySeconds);
  const wan = (from: number, to: number) => (from === to ? [] : [`wan:${from}>${to}`]);

  const peers: Peer[] = [];
  let nextId = 0;
  const addPeer = (region: number, nullLeft: number): Peer => {
    const p: Peer = { id: nextId++, region, live: true, round: 0, nullLeft, compute: 0, wall: 0 };
    linkPeer(p);
    peers.push(p);
    return p;
  };
  for (let i = 0; i < c.peers; i++) addPeer(i % c.regions, 0);

  const rounds: RoundState[] = [];
  const round = (r: number): RoundState => {
    while (rounds.length <= r)
      rounds.push({
        open: Infinity,
        uploaded: new Set(),
        avail: new Map(),
        waiting: [],
        deadlineArmed: false,
      });
    return rounds[r]!;
  };
  round(0).open = 0;
  let current = 0;
  let lateUploads = 0;
  let leaves = 0;
  let joins = 0;
  let catchupBytes = 0;
  let stepsLost = 0;

  // Who the validator waits for: live peers past their null rounds that have not left round r behind.
  const contributors = (r: number) =>
    peers.filter((p) => p.live && p.nullLeft === 0 && p.round >= 0 && p.round <= r);
  const trySelect = (r: number, force: boolean) => {
    const st = round(r);
    if (st.selection) return;
    const due = contributors(r).filter((p) => !st.uploaded.has(p.id));
    if (!force && due.length > 0) return;
    // Scores are not timing: among what arrived, the validator's pick is a seeded draw.
    const pool = [...st.uploaded].sort((a, b) => a - b);
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    st.selection = pool.slice(0, c.gather).sort((a, b) => a - b);
    const selectedAt = net.now + c.selectSeconds;
    net.at(selectedAt, () => {
      st.selectedAt = net.now;
      current = Math.max(current, r + 1);
      round(r + 1).open = Math.min(round(r + 1).open, net.now);
      armDeadline(r + 1);
      if (c.design === "b") aggregate(r);
      for (const w of st.waiting.splice(0)) w();
    });
  };
  const armDeadline = (r: number) => {
    const st = round(r);
    if (st.deadlineArmed || r >= c.rounds) return;
    st.deadlineArmed = true;
    net.at(st.open + c.deadlineSeconds, () => trySelect(r, true));
  };
  armDeadline(0);

  // Payload j of round r lands in its home region; mirrors carry it once into every other region.
  const publish = (r: number, from: number, at: number, bytes: number, set: (a: number[]) => void) => {
    const avail = new Array<number>(c.regions).fill(Infinity);
    avail[from] = at;
    set(avail);
    if (c.topology === "hub") {
      avail.fill(at);
      return;
    }
    for (let x = 0; x < c.regions; x++) {
      if (x === from) continue;
      net.transfer(
        [`srv-out:${from}`, `wan:${from}>${x}`, `srv-in:${x}`],
        bytes,
        c.interLatencySeconds,
        (t) => {
          avail[x] = t;
          for (const w of round(r).waiting.splice(0)) w();
        },
      );
    }
  };

  // Downloads `bytes` into region `to` when the object is readable there (or from the hub).
  const fetchInto = (p: Peer, bytes: number, source: number, done: () => void) => {
    net.transfer(
      [`srv-out:${home(source)}`, ...wan(home(source), p.region), `down:${p.id}`],
      bytes,
      lat(home(source), p.region),
      done,
    );
  };

  const aggregate = (r: number) => {
    const st = round(r);
    const sel = st.selection!;
    let left = sel.length;
    const afterAll = () => {
      net.at(net.now + c.aggregatorSeconds, () =>
        net.transfer(["agg-up", "srv-in:0"], c.aggregate, c.intraLatencySeconds, (t) => {
          publish(r, 0, t, c.aggregate, (a) => (st.aggregateAvail = a));
          for (const w of st.waiting.splice(0)) w();
        }),
      );
    };
    if (left === 0) afterAll();
    for (const j of sel) {
      const go = () => {
        const a = st.avail.get(j)!;
        if (a[0]! > net.now) return false;
        net.transfer(["srv-out:0", "agg-down"], c.payload, c.intraLatencySeconds, () => {
          if (--left === 0) afterAll();
        });
        return true;
      };
      whenReady(r, go);
    }
  };

  // Retries `go` whenever something lands in round r until it starts.
  const whenReady = (r: number, go: () => boolean) => {
    if (go()) return;
    const retry = () => {
      if (!go()) round(r).waiting.push(retry);
    };
    round(r).waiting.push(retry);
  };

  const gather = (p: Peer, r: number, roundStart: number, computeSeconds: number) => {
    const st = round(r);
    const finish = () => {
      net.at(net.now + c.aggregateSeconds, () => {
        p.compute += computeSeconds;
        p.wall += net.now - roundStart;
        if (p.nullLeft > 0) p.nullLeft--;
        startRound(p, r + 1);
      });
    };
    const region = home(p.region);
    if (c.design === "a") {
      const sel = st.selection!;
      let left = sel.length;
      if (left === 0) finish();
      for (const j of sel) {
        // Read from the own region's copy only: waiting for the mirror is what keeps an ocean
        // crossing per payload and region, not per reader.
        whenReady(r, () => {
          const a = st.avail.get(j)!;
          if (a[region]! > net.now) return false;
          fetchInto(p, c.payload, region, () => {
            if (--left === 0) finish();
          });
          return true;
        });
      }
    } else {
      whenReady(r, () => {
        const a = st.aggregateAvail;
        if (!a || a[region]! > net.now) return false;
        fetchInto(p, c.aggregate, region, finish);
        return true;
      });
    }
  };

  const startRound = (p: Peer, r: number) => {
    p.round = r;
    if (r >= c.rounds || !p.live) return;
    if (random() < c.churn.leaveProbability) {
      p.live = false;
      leaves++;
      trySelect(r, false);
      // A replacement joins somewhere within a round, in a region drawn at random.
      const region = Math.floor(random() * c.regions);
      const delay = random() * c.deadlineSeconds;
      net.at(net.now + delay, () => join(region));
      return;
    }
    const start = net.now;
    const slow = random() < c.stragglers.probability ? 1 + random() * (c.stragglers.slowdownMax - 1) : 1;
    const jitter = c.stragglers.jitter > 0 ? Math.max(0.5, 1 + c.stragglers.jitter * gaussian(random)) : 1;
    const full = c.innerSteps * c.stepSeconds * slow * jitter;
    const computeSeconds =
      c.stragglers.policy === "timebox" ? Math.min(full, c.innerSteps * c.stepSeconds) : full;
    stepsLost += c.innerSteps * (1 - computeSeconds / full);
    const contributes = p.nullLeft === 0;
    net.at(start + computeSeconds + c.compressSeconds, () => {
      const afterUpload = () => {
        const st = round(r);
        if (st.selection) whenSelected();
        else st.waiting.push(whenSelected);
      };
      const whenSelected = (): void => {
        const st = round(r);
        if (st.selectedAt === undefined) {
          st.waiting.push(whenSelected);
          return;
        }
        gather(p, r, start, computeSeconds);
      };
      if (!contributes) {
        afterUpload();
        return;
      }
      const h = home(p.region);
      net.transfer([`up:${p.id}`, ...wan(p.region, h), `srv-in:${h}`], c.payload, lat(p.region, h), (t) => {
        const st = round(r);
        if (st.selection) lateUploads++;
        else {
          st.uploaded.add(p.id);
          publish(r, h, t, c.payload, (a) => st.avail.set(p.id, a));
        }
        trySelect(r, false);
        afterUpload();
      });
    });
  };

  // A joiner loads the latest checkpoint and replays the rounds since (G payloads or one
  // aggregate each), then runs its null rounds before it contributes.
  const join = (region: number) => {
    if (current >= c.rounds) return;
    joins++;
    const p = addPeer(region, c.churn.nullRounds);
    p.round = -1;
    const replay = Math.floor(random() * c.churn.checkpointEveryRounds);
    const perRound = c.design === "a" ? c.gather * c.payload : c.aggregate;
    const bytes = c.churn.checkpointBytes + replay * perRound;
    catchupBytes += bytes;
    fetchInto(p, bytes, region, () => startRound(p, current));
  };

  for (const p of peers) startRound(p, 0);
  net.run();

  const sel = rounds.slice(0, c.rounds).map((r) => r.selectedAt ?? NaN);
  const span = sel[sel.length - 1]! - sel[0]!;
  const perLink = new Map<string, number>();
  for (const [l, b] of [...net.carried].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    perLink.set(l, b / c.rounds);
  const sum = (pred: (l: string) => boolean) =>
    [...perLink].filter(([l]) => pred(l)).reduce((s, [, b]) => s + b, 0);
  const compute = peers.reduce((s, p) => s + p.compute, 0);
  const wall = peers.reduce((s, p) => s + p.wall, 0);
  return {
    roundSeconds: c.rounds > 1 ? span / (c.rounds - 1) : (sel[0] ?? NaN),
    utilisation: compute / wall,
    linkBytesPerRound: perLink,
    perRound: {
      peerUp: sum((l) => l.startsWith("up:")),
      peerDown: sum((l) => l.startsWith("down:")),
      crossRegion: sum((l) => l.startsWith("wan:")),
      serverOut: sum((l) => l.startsWith("srv-out:")),
      serverIn: sum((l) => l.startsWith("srv-in:")),
      aggregator: sum((l) => l.startsWith("agg-")),
    },
    selected: rounds.slice(0, c.rounds).map((r) => r.selection?.length ?? 0),
    lateUploads,
    leaves,
    joins,
    catchupBytes,
    stepsLost,
  };
}

/** A standard normal draw (Box-Muller), from the seeded generator. */
function gaussian(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
