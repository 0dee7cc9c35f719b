#!/usr/bin/python3
"""The scaling model of dptrain: predicted samples/s and efficiency of
data-parallel training on N nodes, from constants measured on this machine
(bench/scaling.sh writes them to bench/results/scaling-constants.json).

    /usr/bin/python3 bench/scaling_model.py fit RAW.jsonl [--machine JSON] -o CONSTANTS.json
    /usr/bin/python3 bench/scaling_model.py predict CONSTANTS.json [--png PNG] [--table-only] [--markdown MD]
                                                   [--eta allreduce|p2p]

`fit` turns the raw records of bench/scaling.sh into the constants (the
allreduce lines T = a + b m: b by least squares over m >= 1 MiB, a from
m <= 4 KiB); `predict` prints the tables (the constants, the model checked
against dptrain on 2 simulated hosts, efficiency for 2..64 nodes, where
overlap and larger batches stop helping) and draws PNG with gnuplot.
Python 3 and NumPy only.

The model
---------
One rank per node; per-rank batch b; P nodes in a ring; n = gradient bytes
(4 x parameters, float32).

Compute (measured, 1 rank x 1 thread, this machine's core): t_c(b) = b /
samples/s of dptrain's 1-rank run (forward, backward, the optimizer's update
and the batch gather). The backward timeline: the forward+backward time t_fb
and the time r_l at which each layer's gradient is final
(bench/step_timeline.c, scaled so that t_fb <= t_c).

Allreduce of m bytes over P nodes (ring: a reduce-scatter and an allgather,
2 (P-1) steps of m/P bytes each):

    T_ar(m, P) = 2 (P-1) alpha + 2 (P-1)/P * m / (eta B) + (P-1)/P * m * gamma

alpha = latency of one message (one step: half the measured round trip of
4 bytes between two simulated hosts, or 20 us assumed), B = link rate in
bytes/s, eta = the share of it an allreduce gets (default: the ring
allreduce's fitted bandwidth over the tbf rate, 1 Gbit/s and 200 Mbit/s, 2
and 3 hosts; --eta p2p: TCP's one-way goodput, an ideal transport), gamma =
seconds per byte of the reduction arithmetic (MPI_Reduce_local, measured,
interpolated by size). Beside the ring, the tables show recursive
halving-doubling (Rabenseifner): the same bytes, 2 log2 P latencies. The small agreed reductions of every step (the non-finite check,
and 2 per synchronized batch-norm layer: forward and backward) are latency
bound: ceil(log2 P) alpha each (recursive doubling); k_s of them per step.

Step time:

    T(1)              = t_c
    T(P), overlap off = t_c + k_s ceil(log2 P) alpha + T_ar(n, P)
    T(P), overlap on  = t_c + k_s ceil(log2 P) alpha + max(0, E - t_fb)

where E is the time the last bucket's allreduce ends, the buckets (dptrain's
plan: layers in backward order, adjacent, up to bucket_mb = 1 MiB, the first
a quarter of it) leaving one after another on the one link:
    start_j = max(ready_j, end_{j-1}),  end_j = start_j + T_ar(m_j, P),
ready_j being the r_l of the bucket's last layer. So overlap hides
communication only up to the backward time left after each bucket is ready,
and not at all the bucket that is ready only when backward ends. `auto` is
dptrain's rule: overlapped unless the last bucket is over half the gradient.

    samples/s(P) = P b / T(P),   efficiency(P) = samples/s(P) / (P samples/s(1)) = t_c / T(P)

Larger batches: the communication per step does not depend on b, the
compute grows with b, so efficiency rises with b until compute dominates.
But the number of steps to a given loss is S = S_min (1 + B_noise / B) for a
global batch B = P b (McCandlish et al. 2018, "An Empirical Model of
Large-Batch Training"; dptrain estimates B_simple ~ B_noise, [diagnostics]),
so the speedup to a target loss over 1 node at batch b is

    speedup = efficiency(P) * S(b) / S(P b) = efficiency(P) (1 + B_noise/b) / (1 + B_noise/(P b))

which is at most efficiency(P) (1 + B_noise/b) however many nodes: once
P b >> B_noise, more nodes (or a larger b) buy samples/s but not time to
the target.

Assumptions: ring allreduce (Open MPI's default picks other algorithms: on 3
hosts measured 2x slower than ring for the MLP's gradient); one rank per
node; a node computes like one core of this machine; no congestion (every
link runs at B in both directions at once, a non-blocking switch); the
measured veth latency (Open MPI's TCP path on one machine) is lower than a
real switch's, so the tables also show alpha = 20 us; at 10 and 100 Gbit/s
the same eta and gamma as measured, i.e. the transport keeps up with the
link (at 100 Gbit/s one TCP stream from one core does not: that needs RDMA);
perfect progress of the non-blocking allreduce during backward.

The check against dptrain on 2 simulated hosts uses the measured 2-host
times of that link (interpolated between the measured sizes, which include
both whole gradients) instead of the ring formula: MPI_Allreduce (Open MPI's default
algorithm, as dptrain runs it) for overlap off, MPI_Iallreduce (libnbc) per
bucket for overlap on, and the 32-byte MPI_Allreduce for each small reduction.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

NOMINAL_BPS = {"none": None, "10gbit": 10e9, "1gbit": 1e9, "200mbit": 200e6}
BUCKET_MB = 1.0  # dptrain's default [optim] bucket_mb
ALPHA_SWITCH = 20e-6
NODES = list(range(1, 65))


# ------------------------------------------------------------------ fitting

def median(values):
    v = sorted(values)
    return v[(len(v) - 1) // 2] if v else None


def fit_line(points):
    """T = a + b m from the median times [(bytes, seconds)]: the slope b by
    least squares over m >= 1 MiB (bandwidth), the intercept a as the median
    of T - b m over m <= 4 KiB (latency). Returns a, b and the largest
    relative error over all points."""
    m = np.array([p[0] for p in points], float)
    t = np.array([p[1] for p in points], float)
    big = m >= 1 << 20
    b = float(np.polyfit(m[big], t[big], 1)[0]) if big.sum() >= 2 else float(np.sum(t * m) / np.sum(m * m))
    small = m <= 4096
    a = float(np.median(t[small] - b * m[small])) if small.any() else 0.0
    rel = (a + b * m - t) / t
    return a, b, float(np.max(np.abs(rel)))


def fit(raw_path, machine):
    recs = [json.loads(line) for line in open(raw_path) if line.strip().startswith("{")]
    out = {"about": "constants of bench/scaling_model.py, measured by bench/scaling.sh",
           "machine": machine, "compute": {}, "network": {}, "validation": [], "noise_scale": {}}
    for key, field in (("loadavg_at_timed_runs", "loadavg"), ("cpu_busy_before_timed_runs", "cpu_busy_before")):
        v = [r[field] for r in recs if field in r]
        out["machine"][key] = {"min": min(v), "median": median(v), "max": max(v)} if v else None

    comp = out["compute"]
    for r in recs:
        if r["kind"] == "compute":
            c = comp.setdefault(r["model"], {"batches": {}, "two_ranks_one_host": {}})
            key = "batches" if r["ranks"] == 1 else "two_ranks_one_host"
            e = c[key].setdefault(str(r["batch"]), {"samples_per_s_runs": [], "comm_ms_runs": [], "loadavg": []})
            e["samples_per_s_runs"].append(r["samples_per_s"])
            e["comm_ms_runs"].append(r["comm_ms_per_step"])
            e["loadavg"].append(r["loadavg"])
        elif r["kind"] == "timeline":
            c = comp.setdefault(r["model"], {"batches": {}, "two_ranks_one_host": {}})
            c["params"] = r["params"]
            e = c["batches"].setdefault(str(r["batch"]), {"samples_per_s_runs": [], "comm_ms_runs": [], "loadavg": []})
            e["forward_s"] = r["forward_s"]
            e["forward_backward_s"] = r["forward_backward_s"]
            e["layers"] = [{k: l[k] for k in ("layer", "kind", "param_offset", "params", "ready_s")} for l in r["layers"]]
    for name, c in comp.items():
        for b, e in c["batches"].items():
            sps = median(e["samples_per_s_runs"])
            e["samples_per_s"] = sps
            e["step_s"] = int(b) / sps
        for b, e in c["two_ranks_one_host"].items():
            sps = median(e["samples_per_s_runs"])
            e["samples_per_s"] = sps
            e["step_s"] = 2 * int(b) / sps  # each rank takes b samples a step
            e["comm_s"] = median(e["comm_ms_runs"]) / 1e3
            e["compute_s"] = e["step_s"] - e["comm_s"]
        any_b = next(iter(c["batches"].values()))
        # the small agreed reductions per step: the non-finite check, and the
        # forward and backward statistics of each synchronized batch norm
        n_bn = sum(1 for l in any_b.get("layers", []) if l["kind"] == "batchnorm")
        c["small_allreduces_per_step"] = 1 + 2 * n_bn

    rl = [(r["bytes"], r["median_s"]) for r in recs if r["kind"] == "reduce_local"]
    out["reduce_local"] = {"points": sorted(rl), "note": "MPI_Reduce_local(SUM) of float32, seconds"}

    net = out["network"]
    for r in recs:
        if r["kind"] != "net":
            continue
        s = net.setdefault(r["shape"], {"nominal_bps": NOMINAL_BPS.get(r["shape"]), "p2p": {}, "allreduce": {}})
        if r["alg"] == "p2p":
            if "half_rtt_s" in r and r["bytes"] <= 8:
                s["p2p"]["half_rtt_s"] = r["half_rtt_s"]
            if r["bytes"] >= 1 << 20:
                s["p2p"]["bandwidth_Bps"] = r["bandwidth_Bps"]
            continue
        a = s["allreduce"].setdefault(r["alg"], {}).setdefault(str(r["ranks"]), {"points": []})
        a["points"].append([r["bytes"], r["median_s"], r["p25_s"], r["p75_s"]])
    for shape, s in net.items():
        bw = s["p2p"].get("bandwidth_Bps")
        if s["nominal_bps"] and bw:
            s["p2p"]["goodput_fraction"] = bw * 8 / s["nominal_bps"]
        for alg, per_p in s["allreduce"].items():
            for p, a in per_p.items():
                a["points"].sort()
                P = int(p)
                a0, b0, err = fit_line([(m, t) for m, t, _, _ in a["points"]])
                a.update({"a_s": a0, "b_s_per_byte": b0, "max_rel_error": err,
                          "fit": "T = a + b m: b by least squares over m >= 1 MiB, a = median of T - b m over m <= 4 KiB"})
                if alg == "ring":
                    a["alpha_s"] = a0 / (2 * (P - 1))
                    a["bandwidth_Bps"] = 2 * (P - 1) / P / b0

    for r in recs:
        if r["kind"] == "dptrain_hosts":
            v = next((v for v in out["validation"] if v["shape"] == r["shape"] and v["model"] == r["model"]
                      and v["overlap"] == r["overlap"]), None)
            if v is None:
                v = {k: r[k] for k in ("shape", "model", "overlap", "ranks", "batch")}
                v.update({"samples_per_s_runs": [], "comm_ms_runs": [], "loadavg": []})
                out["validation"].append(v)
            v["samples_per_s_runs"].append(r["samples_per_s"])
            v["comm_ms_runs"].append(r["comm_ms_per_step"])
            v["loadavg"].append(r["loadavg"])
        elif r["kind"] == "noise":
            out["noise_scale"][r["model"]] = {k: r[k] for k in ("B_simple", "step", "global_batch")}
    for v in out["validation"]:
        v["samples_per_s"] = median(v["samples_per_s_runs"])
        v["comm_ms_per_step"] = median(v["comm_ms_runs"])
    return out


# ------------------------------------------------------------------ the model

class Net:
    """Costs of collectives on P nodes for one link rate. algorithm "ring"
    is the model (2 (P-1) latencies); "rhd" (recursive halving-doubling,
    Rabenseifner: the same bytes, 2 log2 P latencies) is shown beside it."""

    def __init__(self, rate_bps, alpha, eta, gamma_points, label, algorithm="ring"):
        self.rate = rate_bps
        self.alpha = alpha
        self.eta = eta
        self.label = label
        self.algorithm = algorithm
        g = np.array(gamma_points, float)
        self._gm = np.log(g[:, 0])
        self._gs = np.log(g[:, 1] / g[:, 0])

    def gamma(self, m):
        """seconds per byte of the reduction arithmetic on m bytes"""
        return float(np.exp(np.interp(math.log(max(m, 1.0)), self._gm, self._gs)))

    def latency(self, P):
        if self.algorithm == "rhd":
            return 2 * math.ceil(math.log2(P)) * self.alpha
        return 2 * (P - 1) * self.alpha

    def allreduce(self, m, P):
        if P <= 1:
            return 0.0
        return (self.latency(P) + 2 * (P - 1) / P * m / (self.eta * self.rate / 8)
                + (P - 1) / P * m * self.gamma(m / P))

    def small(self, P):
        return math.ceil(math.log2(P)) * self.alpha if P > 1 else 0.0


class MeasuredNet:
    """Collective costs of one measured link (2 hosts), for checking the
    model against dptrain's runs on the simulated hosts: the measured median
    times interpolated linearly in the size between the measured sizes
    (which include the MLP's and the CNN's whole gradients), the fitted line
    beyond them. Not the line everywhere: through tbf the cost is not
    linear in the size (its burst lets small transfers through at the
    veth's speed), and the line misses the very sizes dptrain sends."""

    def __init__(self, shape_consts):
        ar = shape_consts["allreduce"]
        self.blocking = ar["default"]["2"]
        self.nonblocking = ar.get("iallreduce", ar["default"])["2"]
        tiny = [t for m, t, _, _ in self.blocking["points"] if m <= 64]
        self.tiny = tiny[0] if tiny else self.blocking["a_s"]
        self.label = "measured"

    def allreduce(self, m, P, nonblocking=False):
        f = self.nonblocking if nonblocking else self.blocking
        ms = [p[0] for p in f["points"]]
        if ms[0] <= m <= ms[-1]:
            return float(np.interp(m, ms, [p[1] for p in f["points"]]))
        return max(f["a_s"] + f["b_s_per_byte"] * m, 0.0)

    def small(self, P):
        return self.tiny


def plan_buckets(layers, bucket_bytes):
    """dptrain's reducer plan (src/dist/reducer.c): segments in backward
    order, consecutive and adjacent in memory, up to the cap (the first
    bucket a quarter of it). Returns [(bytes, ready_s)]."""
    first_cap, cap = bucket_bytes / 4 / 4, bucket_bytes / 4  # in floats
    buckets = []
    lo = hi = None
    for l in layers:
        b, e = l["param_offset"], l["param_offset"] + l["params"]
        c = first_cap if len(buckets) <= 1 else cap
        adjacent = buckets and (e == lo or b == hi)
        if not buckets or not adjacent or (hi - lo) + l["params"] > c:
            buckets.append([l["params"], l["ready_s"]])
            lo, hi = b, e
        else:
            lo, hi = min(lo, b), max(hi, e)
            buckets[-1] = [hi - lo, l["ready_s"]]
    return [(4 * n, r) for n, r in buckets]


class Workload:
    """One model at one per-rank batch: its measured compute (or, for a
    batch between the measured ones, interpolated: see at_batch)."""

    def __init__(self, name, batch, c, k_small):
        e = c["batches"][str(batch)]
        self.name, self.batch, self.k_small = name, batch, k_small
        self.t_c = e["step_s"]
        self.n_runs = len(e["samples_per_s_runs"])
        self.params = c["params"]
        self.grad_bytes = 4 * c["params"]
        scale = min(1.0, self.t_c / e["forward_backward_s"])
        self.t_fb = e["forward_backward_s"] * scale
        self.t_f = e["forward_s"] * scale
        self.layers = [dict(l, ready_s=l["ready_s"] * scale) for l in e["layers"]]
        self._plan()

    def _plan(self):
        self.buckets = plan_buckets(self.layers, BUCKET_MB * 1024 * 1024)
        self.auto_overlap = 2 * self.buckets[-1][0] <= self.grad_bytes

    def at_batch(self, b, measured):
        """A workload at batch b: the per-sample compute time interpolated
        (log-log) between the measured batches of this model, the timeline of
        this (measured) batch scaled to it."""
        bs = sorted(w.batch for w in measured)
        per = [measured_by(measured, x).t_c / x for x in bs]
        t_c = b * float(np.exp(np.interp(math.log(b), np.log(bs), np.log(per))))
        w = Workload.__new__(Workload)
        w.__dict__.update(self.__dict__)
        f = t_c / self.t_c
        w.batch, w.t_c, w.t_fb, w.t_f = b, t_c, self.t_fb * f, self.t_f * f
        w.layers = [dict(l, ready_s=l["ready_s"] * f) for l in self.layers]
        w._plan()
        return w

    def ready_before_end(self):
        """fraction of the gradient in buckets that leave before backward ends"""
        return sum(m for m, _ in self.buckets[:-1]) / self.grad_bytes

    def exposed(self, net, P, overlap):
        if P <= 1:
            return 0.0
        if not overlap:
            return net.allreduce(self.grad_bytes, P)
        end = 0.0
        for m, ready in self.buckets:
            cost = (net.allreduce(m, P, nonblocking=True) if isinstance(net, MeasuredNet)
                    else net.allreduce(m, P))
            end = max(ready, end) + cost
        return max(0.0, end - self.t_fb)

    def step(self, net, P, overlap="auto", t_c=None):
        if overlap == "auto":
            overlap = self.auto_overlap
        t_c = self.t_c if t_c is None else t_c
        if P <= 1:
            return t_c
        return t_c + self.k_small * net.small(P) + self.exposed(net, P, overlap)

    def samples_per_s(self, net, P, overlap="auto"):
        return P * self.batch / self.step(net, P, overlap)

    def efficiency(self, net, P, overlap="auto"):
        return self.t_c / self.step(net, P, overlap)


def measured_by(ws, b):
    return next(w for w in ws if w.batch == b)


def useful_speedup(eff, P, b, b_noise):
    """Speedup to a target loss over 1 node at batch b: S(B) = S_min (1 +
    B_noise / B) steps at global batch B (McCandlish et al. 2018), each
    step taking t_c / efficiency."""
    return eff * (1 + b_noise / b) / (1 + b_noise / (P * b))


# ------------------------------------------------------------------ output

def build(consts):
    comp = consts["compute"]
    work = {}
    for name, c in comp.items():
        for b in sorted(c["batches"], key=int):
            if "layers" in c["batches"][b] and c["batches"][b]["samples_per_s_runs"]:
                work[(name, int(b))] = Workload(name, int(b), c, c["small_allreduces_per_step"])
    net = consts["network"]
    shaped = [s for s in net.values() if s["nominal_bps"] and s["nominal_bps"] <= 1e9]
    eta_p2p = float(np.mean([s["p2p"]["goodput_fraction"] for s in shaped]))
    ring = [s["allreduce"]["ring"][P]["bandwidth_Bps"] * 8 / s["nominal_bps"]
            for s in shaped for P in s["allreduce"].get("ring", {})]
    eta_ar = float(np.mean(ring))
    alpha = net["none"]["p2p"]["half_rtt_s"]
    gamma = [(m, t) for m, t in consts["reduce_local"]["points"]]
    return work, eta_ar, eta_p2p, alpha, gamma


def fmt_rate(bps):
    if bps >= 1e12:
        return "%.3g Tbit/s" % (bps / 1e12)
    return "%.3g Gbit/s" % (bps / 1e9) if bps >= 1e9 else "%.3g Mbit/s" % (bps / 1e6)


def bisect_rate(ok, lo=1e6, hi=1e13):
    """the lowest rate (bit/s) at which ok(rate) holds, ok monotone"""
    if not ok(hi):
        return None
    if ok(lo):
        return lo
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def predict(consts, png, table_only, eta_kind, md=None):
    work, eta_ar, eta_p2p, alpha, gamma = build(consts)
    eta = eta_ar if eta_kind == "allreduce" else eta_p2p
    mk = lambda rate, a, alg="ring": Net(rate, a, eta, gamma, "%s, alpha %.3g us%s" % (
        fmt_rate(rate), a * 1e6, "" if alg == "ring" else ", halving-doubling"), alg)
    m = consts["machine"]
    print("# dptrain scaling model (bench/scaling_model.py)")
    rng = lambda k: "%(min).2f..%(max).2f (median %(median).2f)" % m[k] if m.get(k) else "?"
    print("constants measured %s on %s (%s cores), %s, commit %s" % (
        m.get("date", "?"), m.get("cpu", "?"), m.get("cores", "?"), m.get("mpi", "?"), m.get("commit", "?")))
    print("at the timed runs: load average %s; CPU busy (others) in the second before %s" % (
        rng("loadavg_at_timed_runs"), rng("cpu_busy_before_timed_runs")))
    print()
    print("## measured constants")
    print("alpha = %.1f us: one message, Open MPI over TCP between two simulated hosts (veth), half the round trip of 4 B;"
          % (alpha * 1e6))
    print("        the tables also assume alpha = %.0f us (a real switch and NIC)" % (ALPHA_SWITCH * 1e6))
    print("eta   = %.3f: the fraction of the link rate the model's allreduce gets (%s); TCP's one-way goodput"
          % (eta, "the ring allreduce fits at 1 Gbit/s and 200 Mbit/s, 2 and 3 hosts"
             if eta_kind == "allreduce" else "one-way TCP goodput"))
    print("        through tbf is %.3f, the ring allreduce fits give %.3f" % (eta_p2p, eta_ar))
    g = Net(1e9, alpha, eta, gamma, "")
    print("gamma = MPI_Reduce_local seconds per byte: %s" % ", ".join(
        "%s %.3g ns" % (human(mm), g.gamma(mm) * 1e9) for mm, _ in gamma))
    print()
    print("links (one-way TCP goodput, half round trip) and allreduce fits T = a + m / bandwidth")
    for shape, s in consts["network"].items():
        p = s["p2p"]
        line = "  %-8s %6.0f Mbit/s" % (shape, p.get("bandwidth_Bps", 0) * 8 / 1e6)
        line += " (%5.1f%% of the tbf rate)" % (100 * p["goodput_fraction"]) if "goodput_fraction" in p else " (no tbf)          "
        line += ", %.1f us" % (p.get("half_rtt_s", 0) * 1e6)
        print(line)
        for alg in ("default", "ring", "iallreduce"):
            for P, a in sorted(s["allreduce"].get(alg, {}).items()):
                extra = ""
                if alg == "ring":
                    extra = "  -> alpha %.1f us, B %.0f Mbit/s" % (a["alpha_s"] * 1e6, a["bandwidth_Bps"] * 8 / 1e6)
                print("      %-10s P=%s: a %6.1f us, %8.1f MB/s (worst point %+4.0f%%)%s"
                      % (alg, P, a["a_s"] * 1e6, 1 / a["b_s_per_byte"] / 1e6, 100 * a["max_rel_error"], extra))
    print()
    print("compute, 1 rank x 1 thread (dptrain's samples/s): step ms; forward+backward ms; gradient buckets")
    print("(%g MiB) as size@ready time; the share of the gradient ready before backward ends; backward time" % BUCKET_MB)
    print("left after the first big bucket is ready (what overlap can hide)")
    for (name, b), w in sorted(work.items()):
        big = max(range(len(w.buckets)), key=lambda j: w.buckets[j][0])
        print("  %-4s b=%-5d step %8.2f ms (%6.0f/s) fb %7.2f ms  %s  early %5.1f%%  left %7.2f ms"
              % (name, b, w.t_c * 1e3, b / w.t_c, w.t_fb * 1e3,
                 " ".join("%s@%.1f" % (human(mm), r * 1e3) for mm, r in w.buckets),
                 100 * w.ready_before_end(), (w.t_fb - w.buckets[0 if big == len(w.buckets) - 1 else big][1]) * 1e3))
    for name, c in sorted(consts["compute"].items()):
        two = c["two_ranks_one_host"].get("64")
        if two:
            print("  %-4s b=64    2 ranks on this machine (shared memory): %.0f samples/s, per-rank compute %.2f ms a step"
                  % (name, two["samples_per_s"], two["compute_s"] * 1e3))
    for name, ns in sorted(consts.get("noise_scale", {}).items()):
        print("  gradient noise scale %s: B_simple = %.0f at step %d (2 ranks, global batch %d)"
              % (name, ns["B_simple"], ns["step"], ns["global_batch"]))

    # ---- validation
    print()
    print("## predicted vs measured: dptrain on 2 simulated hosts, batch 64 per rank")
    print("predicted = 1-rank compute + the small reductions + the exposed gradient reduction, from the measured")
    print("2-host costs of that link (overlap off: MPI_Allreduce; on: MPI_Iallreduce per bucket, libnbc's");
    print("algorithms); [..] = with the per-rank compute of 2 ranks sharing this machine's cores instead.")
    print("wait = rank 0's time in the gradient reduction (dptrain's comm_ms_per_step) against the predicted")
    print("exposed time: rank 0 can leave before rank 1 has all data, the rest then shows in the next reduction")
    print("%-8s %-5s %-7s %18s %22s %8s %16s" % ("link", "model", "overlap", "predicted/s", "measured/s (runs)",
                                               "error", "wait ms pr/meas"))
    vrows = []
    for v in consts["validation"]:
        w = work.get((v["model"], v["batch"]))
        if w is None or v["shape"] not in consts["network"]:
            continue
        net = MeasuredNet(consts["network"][v["shape"]])
        two = consts["compute"][v["model"]]["two_ranks_one_host"].get(str(v["batch"]))
        t = w.step(net, 2, v["overlap"])
        pred = 2 * v["batch"] / t
        pred2 = 2 * v["batch"] / w.step(net, 2, v["overlap"], t_c=two["compute_s"]) if two else float("nan")
        exp = w.exposed(net, 2, v["overlap"]) * 1e3
        meas = v["samples_per_s"]
        runs = sorted(v["samples_per_s_runs"])
        vrows.append(dict(v, predicted=pred, predicted_2ranks=pred2))
        print("%-8s %-5s %-7s %8.0f [%7.0f] %8.0f (%5.0f-%5.0f) %+7.1f%% %7.2f / %6.2f"
              % (v["shape"], v["model"], "on" if v["overlap"] else "off", pred, pred2, meas, runs[0], runs[-1],
                 100 * (pred - meas) / meas, exp, v["comm_ms_per_step"]))

    # ---- extrapolation
    rates = (1e9, 10e9, 100e9)
    Ns = [2, 4, 8, 16, 32, 64]
    print()
    print("## predicted efficiency = samples/s(N) / (N samples/s(1)); overlap as dptrain picks (auto)")
    print("%-4s %-5s %-44s %s" % ("", "batch", "network", " ".join("%6d" % n for n in Ns)))
    for (name, b), w in sorted(work.items()):
        for rate in rates:
            for a in (alpha, ALPHA_SWITCH):
                net = mk(rate, a)
                print("%-4s %-5d %-44s %s" % (name, b, net.label, " ".join("%6.3f" % w.efficiency(net, n) for n in Ns)))
            net = mk(rate, ALPHA_SWITCH, "rhd")
            print("%-4s %-5d %-44s %s" % (name, b, net.label, " ".join("%6.3f" % w.efficiency(net, n) for n in Ns)))

    print()
    print("## where overlap stops helping (64 nodes, alpha %.1f us)" % (alpha * 1e6))
    for (name, b), w in sorted(work.items()):
        for rate in rates:
            net = mk(rate, alpha)
            off, on = w.exposed(net, 64, False), w.exposed(net, 64, True)
            print("  %-4s b=%-5d %-11s allreduce %7.2f ms, exposed when overlapped %7.2f ms; step compute %7.2f ms;"
                  " efficiency off %.3f, on %.3f (%+.3f)"
                  % (name, b, fmt_rate(rate), off * 1e3, on * 1e3, w.t_c * 1e3, w.efficiency(net, 64, False),
                     w.efficiency(net, 64, True), w.efficiency(net, 64, True) - w.efficiency(net, 64, False)))
        f = overlap_findings(w, mk, alpha)
        helps, hurts = f["helps"], f["hurts"]
        text = "last bucket %.0f%% of the gradient (ready when backward ends: cannot overlap)" % (
            100 * f["last_share"])
        if w.auto_overlap:
            text += "; overlapped, all but the latency is hidden above %s" % (
                fmt_rate(f["hide"]) if f["hide"] else "no rate")
        text += "; overlap gains >= 1%% of efficiency %s" % (
            "from %s to %s" % (fmt_rate(min(helps)), fmt_rate(max(helps))) if helps else "at no rate")
        if hurts:
            text += ", loses >= 1%% from %s to %s (more latencies: one per bucket)" % (
                fmt_rate(min(hurts)), fmt_rate(max(hurts)))
        print("  %-4s b=%-5d %s" % (name, b, text))

    print()
    print("## where larger batches stop helping (64 nodes, alpha %.1f us, overlap auto)" % (alpha * 1e6))
    for name in sorted({n for n, _ in work}):
        ws = sorted((w for (n, _), w in work.items() if n == name), key=lambda w: w.batch)
        bn = noise_of(consts, name)
        for rate in (10e9, 100e9):
            net = mk(rate, alpha)
            parts = []
            for w in ws:
                e = w.efficiency(net, 64)
                t = "b=%d eff %.3f %.0f/s" % (w.batch, e, w.samples_per_s(net, 64))
                if bn:
                    t += " speedup to target %.1fx" % useful_speedup(e, 64, w.batch, bn)
                parts.append(t)
            # the smallest per-rank batch with efficiency >= 0.9 and >= 0.95
            need = []
            for target in (0.9, 0.95):
                found = batch_needed(ws, net, target)
                need.append("%s: b %s" % (target, ">= %d" % found if found else "> %d" % (4 * ws[-1].batch)))
            print("  %-4s %-11s %s; efficiency %s" % (name, fmt_rate(rate), "; ".join(parts), ", ".join(need)))
        if bn:
            print("  %-4s B_noise ~ B_simple = %.0f: steps to a target S = S_min (1 + B_noise/(64 b)); the speedup over"
                  " 1 node at batch b is at most efficiency x (1 + B_noise/b) = %.1fx at b=%d, %.1fx at b=%d"
                  % (name, bn, 1 + bn / ws[0].batch, ws[0].batch, 1 + bn / ws[-1].batch, ws[-1].batch))
        else:
            print("  %-4s no gradient noise scale measured" % name)

    if md:
        markdown(consts, work, mk, alpha, eta, eta_ar, eta_p2p, gamma, vrows, png, md)
    if not table_only and png:
        plot(work, mk, alpha, consts, png)


def human(m):
    for unit, f in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if m >= f:
            return "%.3g %s" % (m / f, unit)
    return "%d B" % m


# ------------------------------------------------------------------ findings
# Shared by the printed tables and the markdown section, so both say the
# same numbers.

RATE_GRID = [10 ** (6 + k / 20) for k in range(141)]  # 1 Mbit/s .. 10 Tbit/s


def overlap_findings(w, mk, alpha, P=64):
    """What overlapping the reduction with backward buys w on P nodes: the
    efficiency gain at each rate of RATE_GRID, the rates where it gains or
    loses at least 1% of efficiency, and (if dptrain's auto rule overlaps
    w) the rate above which all but the latencies are hidden."""
    gains = [w.efficiency(mk(r, alpha), P, True) - w.efficiency(mk(r, alpha), P, False) for r in RATE_GRID]
    helps = [r for r, g in zip(RATE_GRID, gains) if g >= 0.01]
    hurts = [r for r, g in zip(RATE_GRID, gains) if g <= -0.01]
    hide = None
    if w.auto_overlap:
        floor = w.exposed(mk(1e15, alpha), P, True)
        hide = bisect_rate(lambda r: w.exposed(mk(r, alpha), P, True) <= floor + 0.01 * w.t_c)
    return {"last_share": w.buckets[-1][0] / w.grad_bytes, "helps": helps, "hurts": hurts, "hide": hide}


def batch_needed(ws, net, target, P=64):
    """the smallest per-rank batch (a multiple of 8 from the smallest
    measured one up to 4x the largest) with efficiency >= target on P
    nodes, or None"""
    for b in range(ws[0].batch, 4 * ws[-1].batch + 1, 8):
        near = min(ws, key=lambda w: abs(math.log(w.batch / b)))
        if near.at_batch(b, ws).efficiency(net, P) >= target:
            return b
    return None


def best_batch_for_time(ws, net, b_noise, P=64):
    """The per-rank batch b (multiples of 8 from the smallest measured one
    to 4x the largest) with which P nodes reach a target loss soonest: time
    = S_min (1 + B_noise/(P b)) t_c(b) / efficiency(b). A larger b means
    fewer, longer steps and better efficiency; the steps stop falling once P
    b is well above B_noise. Returns b and the speedup over 1 node at the
    smallest measured batch (1 node is fastest at its smallest batch)."""
    b0 = ws[0]
    s_min_time = lambda w, b: (1 + b_noise / (P * b)) * w.t_c / w.efficiency(net, P)  # steps x step time / S_min
    ref = (1 + b_noise / b0.batch) * b0.t_c
    best = None
    for b in range(b0.batch, 4 * ws[-1].batch + 1, 8):
        near = min(ws, key=lambda w: abs(math.log(w.batch / b)))
        w = near.at_batch(b, ws)
        t = s_min_time(w, b)
        if best is None or t < best[1]:
            best = (b, t)
    return best[0], ref / best[1]


def noise_of(consts, name):
    ns = consts.get("noise_scale", {}).get(name)
    return ns["B_simple"] if ns and (ns.get("B_simple") or 0) > 0 else None


def markdown(consts, work, mk, alpha, eta, eta_ar, eta_p2p, gamma, vrows, png, path):
    """The README section: every number from consts (the measurement)."""
    m = consts["machine"]
    L = []
    add = L.append
    Ns = [2, 4, 8, 16, 32, 64]
    models = sorted({n for n, _ in work})
    add("## Scaling model")
    add("")
    add("How samples/s and efficiency grow with the number of nodes N, predicted from constants measured on")
    add("this machine (%s, %s cores, %s, %s, commit %s; load average at the timed runs %.2f..%.2f)."
        % (m.get("cpu", "?"), m.get("cores", "?"), m.get("mpi", "?"), m.get("date", "?"), m.get("commit", "?"),
           m["loadavg_at_timed_runs"]["min"], m["loadavg_at_timed_runs"]["max"]))
    add("`bench/scaling.sh` measures them (about 20 minutes, root: simulated hosts are network namespaces);")
    add("`bench/scaling_model.py` (Python 3 + NumPy) fits and predicts; the details and assumptions are in its")
    add("docstring.")
    add("")
    add("    bash bench/scaling.sh               # measure, then bench/results/scaling-constants.json, -raw.jsonl,")
    add("                                        # scaling-model.png and scaling-model.md")
    add("    bash bench/scaling.sh --model-only  # the model, plot and this section from the committed constants")
    add("")
    # the section goes into the README at the top of the repository
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    add("![scaling model](%s)" % os.path.relpath(os.path.abspath(png), top) if png else "")
    add("")
    add("**Model.** One rank per node, per-rank batch b, gradient of n bytes (4 per parameter), link rate B:")
    add("")
    add("    T_ar(m, N) = 2 (N-1) alpha + 2 (N-1)/N m / (eta B) + (N-1)/N m gamma      ring allreduce of m bytes")
    add("    T(N)       = t_c(b) + k_s ceil(log2 N) alpha + E(N)                       step time")
    add("    E(N)       = T_ar(n, N)                          overlap off")
    add("               = max(0, end of the last bucket - t_fb)    overlap on: bucket j starts at")
    add("                 max(ready_j, end_{j-1}) and takes T_ar(m_j, N)")
    add("    samples/s  = N b / T(N),   efficiency = t_c(b) / T(N)")
    add("")
    add("t_c(b) is the measured step time of one rank, t_fb its forward+backward part, ready_j when backward")
    add("finishes bucket j's last layer (dptrain's own bucket plan, 1 MiB buckets), k_s the small agreed")
    add("reductions per step (the non-finite check, 2 per batch-norm layer).")
    add("")
    add("**Measured constants.**")
    add("")
    add("| constant | value | how |")
    add("|---|---|---|")
    for (name, b), w in sorted(work.items()):
        add("| t_c / b, %s, b = %d | %.1f us/sample (%.0f samples/s) | dptrain, 1 rank x 1 OpenBLAS thread, median of %d runs |"
            % (name.upper(), b, 1e6 * w.t_c / b, b / w.t_c, w.n_runs))
    add("| alpha | %.1f us | half the round trip of 4 B between 2 simulated hosts (Open MPI TCP over veth) |" % (alpha * 1e6))
    rings = []
    for shape, sc in consts["network"].items():
        if sc["nominal_bps"] and sc["nominal_bps"] <= 1e9:
            for P, a in sorted(sc["allreduce"].get("ring", {}).items()):
                rings.append("%.0f Mbit/s at %s, %s hosts" % (a["bandwidth_Bps"] * 8 / 1e6, fmt_rate(sc["nominal_bps"]), P))
    add("| eta: effective bandwidth eta B | %.3f x B (%.2f Gbit/s on 10, %.1f Gbit/s on 100 Gbit/s) | mean of the ring "
        "MPI_Allreduce fits at the tbf-limited links: %s; one-way TCP goodput is %.3f x B |"
        % (eta, eta * 10, eta * 100, "; ".join(rings), eta_p2p))
    add("| gamma | %s | MPI_Reduce_local, seconds per byte |" % ", ".join(
        "%.3g ns/B at %s" % (t / mm * 1e9, human(mm)) for mm, t in gamma))
    for name in models:
        bn = noise_of(consts, name)
        if bn:
            ns = consts["noise_scale"][name]
            add("| B_noise, %s | %.0f | dptrain's B_simple after %d steps at global batch %d |"
                % (name.upper(), bn, ns["step"], ns["global_batch"]))
    for name in models:
        w = work[(name, min(b for n, b in work if n == name))]
        add("| gradient, %s | %s, %d buckets, the last (ready only when backward ends) %.0f%% of it | dptrain's plan |"
            % (name.upper(), human(w.grad_bytes), len(w.buckets), 100 * w.buckets[-1][0] / w.grad_bytes))
    add("")
    add("**Checked against dptrain** on 2 simulated hosts (network namespaces, TCP, tbf rate limits), batch 64")
    add("per rank, with the measured 2-host allreduce costs of that link in place of the ring formula:")
    add("")
    add("| link | model | overlap | predicted samples/s | measured (median; range of %d) | error | error, 2-rank compute |"
        % max([len(v["samples_per_s_runs"]) for v in vrows] or [0]))
    add("|---|---|---|---|---|---|---|")
    err = lambda v, k: (v[k] - v["samples_per_s"]) / v["samples_per_s"]
    for v in vrows:
        runs = sorted(v["samples_per_s_runs"])
        nominal = NOMINAL_BPS.get(v["shape"])
        add("| %s | %s | %s | %.0f | %.0f (%.0f-%.0f) | %+.1f%% | %+.1f%% |"
            % (fmt_rate(nominal) if nominal else "unshaped veth", v["model"].upper(), "on" if v["overlap"] else "off", v["predicted"], v["samples_per_s"],
               runs[0], runs[-1], 100 * err(v, "predicted"), 100 * err(v, "predicted_2ranks")))
    if vrows:
        e1 = [abs(err(v, "predicted")) for v in vrows]
        e2 = [abs(err(v, "predicted_2ranks")) for v in vrows]
        shaped = [abs(err(v, "predicted")) for v in vrows if NOMINAL_BPS.get(v["shape"])]
        add("")
        if shaped:
            add("On the rate-limited links: median absolute error %.0f%%, largest %.0f%%; over all rows %.0f%% and %.0f%%."
                % (100 * float(np.median(shaped)), 100 * max(shaped), 100 * float(np.median(e1)), 100 * max(e1)))
        else:
            add("Median absolute error %.0f%%, largest %.0f%%." % (100 * float(np.median(e1)), 100 * max(e1)))
        add("The last column takes the compute of a rank from 2 ranks sharing this machine (as the 2 simulated")
        add("hosts do) instead of 1 rank alone: median %.0f%%, largest %.0f%% over all rows."
            % (100 * float(np.median(e2)), 100 * max(e2)))
    add("")
    add("**Predicted efficiency** (overlap as dptrain's `auto` picks; alpha as measured, and 20 us as for a")
    add("real switch and NIC):")
    add("")
    add("| model | b | link | alpha | " + " | ".join("N=%d" % n for n in Ns) + " |")
    add("|---|---|---|---|" + "---|" * len(Ns))
    for (name, b), w in sorted(work.items()):
        for rate in (10e9, 100e9):
            for a in (alpha, ALPHA_SWITCH):
                net = mk(rate, a)
                add("| %s | %d | %s | %.3g us | %s |" % (name.upper(), b, fmt_rate(rate), a * 1e6,
                                                         " | ".join("%.2f" % w.efficiency(net, n) for n in Ns)))
    add("")
    add("**Where overlap stops helping** (64 nodes, measured alpha):")
    add("")
    for (name, b), w in sorted(work.items()):
        f = overlap_findings(w, mk, alpha)
        n10, n100 = mk(10e9, alpha), mk(100e9, alpha)
        s = ("- %s, b = %d: the last bucket, %.0f%% of the gradient, is ready only when backward ends, so at most %.0f%% "
             "of the reduction can hide. " % (name.upper(), b, 100 * f["last_share"], 100 - 100 * f["last_share"]))
        s += "Efficiency off/on: %.2f/%.2f at 10 Gbit/s, %.2f/%.2f at 100 Gbit/s. " % (
            w.efficiency(n10, 64, False), w.efficiency(n10, 64, True), w.efficiency(n100, 64, False),
            w.efficiency(n100, 64, True))
        if f["helps"]:
            s += "Overlap gains at least 1 point of efficiency from %s to %s; above that the reduction is too " \
                 "short to matter%s. " % (fmt_rate(min(f["helps"])), fmt_rate(max(f["helps"])),
                                          ", below it too long to hide behind backward" if min(f["helps"]) > 1e6 else "")
        else:
            s += "Overlap gains 1 point of efficiency at no link rate. "
        if f["hurts"]:
            s += "It loses at least 1 point from %s to %s (one latency term per bucket). " % (
                fmt_rate(min(f["hurts"])), fmt_rate(max(f["hurts"])))
        if f["hide"]:
            s += "Overlapped, all but the latencies are hidden above %s. " % fmt_rate(f["hide"])
        s += "dptrain's `auto` %s." % ("overlaps" if w.auto_overlap else "does not overlap (the last bucket is over half)")
        add(s)
    add("")
    add("**Where larger batches stop helping** (64 nodes, measured alpha, overlap auto): efficiency rises with the")
    add("per-rank batch b (the communication per step does not depend on b), but the steps to a target loss stop")
    add("falling once the global batch 64 b is well above the gradient noise scale:")
    add("")
    for name in models:
        ws = sorted((w for (n, _), w in work.items() if n == name), key=lambda w: w.batch)
        bn = noise_of(consts, name)
        for rate in (10e9, 100e9):
            net = mk(rate, alpha)
            need = [batch_needed(ws, net, t) for t in (0.9, 0.95)]
            s = "- %s at %s: efficiency %s; 0.9 needs b %s, 0.95 needs b %s" % (
                name.upper(), fmt_rate(rate),
                ", ".join("%.2f at b = %d" % (w.efficiency(net, 64), w.batch) for w in ws),
                *[">= %d" % x if x else "> %d" % (4 * ws[-1].batch) for x in need])
            if bn:
                s += "; speedup to a target loss over 1 node at the same b: %s" % ", ".join(
                    "%.1fx at b = %d" % (useful_speedup(w.efficiency(net, 64), 64, w.batch, bn), w.batch) for w in ws)
                b_best, sp = best_batch_for_time(ws, net, bn)
                s += "; the time to the target is shortest at b = %d%s, %.1fx faster than 1 node at b = %d" % (
                    b_best, " (the smallest batch measured)" if b_best == ws[0].batch else "", sp, ws[0].batch)
            add(s + ".")
        if bn:
            add("- %s: the steps to a target loss scale as 1 + B_noise/B with the global batch B = N b (McCandlish et "
                "al. 2018), B_noise ~ %.0f measured: once B is several times B_noise, a larger batch or more nodes "
                "buy samples/s but hardly any time to the target (64 nodes at b = %d: B = %d, %.0fx B_noise); the "
                "speedup over 1 node at batch b is at most efficiency x (1 + B_noise/b)."
                % (name.upper(), bn, ws[0].batch, 64 * ws[0].batch, 64 * ws[0].batch / bn))
        elif consts.get("noise_scale", {}).get(name):
            ns = consts["noise_scale"][name]
            add("- %s: dptrain's B_simple estimate was not positive after %d steps at global batch %d (too noisy),"
                " so the time-to-loss limit is not given." % (name.upper(), ns["step"], ns["global_batch"]))
        else:
            add("- %s: no gradient noise scale measured (the time-to-loss limit is not given)." % name.upper())
    add("")
    add("Assumptions and limits: ring allreduce; a node computes like one core of this machine; no congestion")
    add("(a non-blocking switch); eta and gamma as measured here, applied at 10 and 100 Gbit/s (one TCP stream")
    add("from one core does not reach 100 Gbit/s: that needs RDMA); perfect progress of the non-blocking allreduce")
    add("in backward; B_noise from the end of one short run (it grows as training proceeds). eta comes from")
    add("allreduces that send both ways at once through tbf on simulated links (%.2f, against %.2f for one-way TCP"
        % (eta_ar, eta_p2p))
    add("goodput); `bench/scaling_model.py predict --eta p2p` gives the tables with the one-way goodput instead.")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")
    print("markdown: %s" % path)


def plot(work, mk, alpha, consts, png):
    """Four panels: samples/s (top) and efficiency (bottom) against nodes,
    with the measured latency (left) and a switch's (right)."""
    color = {"mlp": "#1f77b4", "cnn": "#d62728"}
    with tempfile.TemporaryDirectory() as d:
        panels = []
        for a in (alpha, ALPHA_SWITCH):
            for quantity in ("samples", "efficiency"):
                lines = []
                for name in ("mlp", "cnn"):
                    bs = sorted(b for n, b in work if n == name)
                    for b in sorted({bs[0], bs[-1]}) if bs else []:
                        w = work[(name, b)]
                        for rate in (10e9, 100e9, 1e9):
                            if rate == 1e9 and b != bs[0]:
                                continue
                            net = mk(rate, a)
                            path = os.path.join(d, "%s-%s-%d-%g-%g.dat" % (quantity, name, b, rate, a))
                            with open(path, "w") as f:
                                for n in NODES:
                                    v = w.efficiency(net, n) if quantity == "efficiency" else w.samples_per_s(net, n)
                                    f.write("%d %.6g\n" % (n, v))
                            style = {10e9: "dt 2", 100e9: "dt 1", 1e9: "dt 3"}[rate]
                            width = 1 if rate == 1e9 else 2.5 if b == bs[0] else 1.3
                            pts = " pt 7 ps 0.6 pi 6" if b != bs[0] else ""
                            title = "%s b=%d, %s%s" % (name.upper(), b, fmt_rate(rate),
                                                       " (as the validation link)" if rate == 1e9 else "")
                            lines.append("'%s' using 1:2 with %s %s lw %.1f lc rgb '%s'%s title '%s'"
                                         % (path, "linespoints" if pts else "lines", style, width, color[name],
                                            pts, title))
                val = os.path.join(d, "validation-%s-%g.dat" % (quantity, a))
                with open(val, "w") as f:
                    for v in consts["validation"]:
                        w = work.get((v["model"], v["batch"]))
                        if v["shape"] == "1gbit" and w and v["overlap"] == w.auto_overlap:
                            y = (v["samples_per_s"] / (2 * v["batch"] / w.t_c) if quantity == "efficiency"
                                 else v["samples_per_s"])
                            f.write("2 %.6g\n" % y)
                lines.append("'%s' using 1:2 with points pt 9 ps 1.8 lc rgb 'black' "
                             "title 'dptrain measured, 2 simulated hosts at 1 Gbit/s'" % val)
                panels.append((a, quantity, lines))
        script = """
set terminal pngcairo size 1500,1250 font 'sans,10'
set output '%s'
set multiplot layout 2,2 columnsfirst margins 0.06,0.98,0.14,0.93 spacing 0.07,0.08 title "dptrain scaling model: ring allreduce, one rank per node computing like one core of this machine, overlap as dptrain picks (auto), per-rank batch b fixed\\nefficiency = samples/s on N nodes / (N x samples/s on 1 node)"
set logscale x 2
set xrange [1:66]
set xtics (1, 2, 4, 8, 16, 32, 64)
set grid
set xlabel 'nodes N'
""" % png
        for i, (a, quantity, lines) in enumerate(panels):
            script += "set title 'latency alpha = %.3g us%s'\n" % (
                a * 1e6, " (measured: Open MPI TCP over veth)" if a == alpha else " (assumed: a real switch and NIC)")
            if quantity == "efficiency":
                script += "unset logscale y\nset yrange [0:1.02]\nset ylabel 'efficiency'\nset format y '%g'\n"
            else:
                script += "set logscale y\nset yrange [*:*]\nset ylabel 'samples/s (all nodes)'\n"
                script += "set format y '10^{%L}'\n"
            script += ("set key at screen 0.5, 0.045 center center vertical maxrows 4 width 1 reverse Left "
                       "font 'sans,9' box\n" if i == 1 else "unset key\n")
            script += "plot " + ", \\\n  ".join(lines) + "\n"
        script += "unset multiplot\n"
        sp = os.path.join(d, "plot.gp")
        with open(sp, "w") as f:
            f.write(script)
        subprocess.run(["gnuplot", sp], check=True)
    print()
    print("plot: %s" % png)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="raw records of bench/scaling.sh -> constants JSON")
    f.add_argument("raw")
    f.add_argument("-o", "--output", required=True)
    f.add_argument("--machine", default="{}", help="JSON object describing the machine")
    p = sub.add_parser("predict", help="constants JSON -> tables and the PNG")
    p.add_argument("constants")
    p.add_argument("--png")
    p.add_argument("--table-only", action="store_true", help="no plot (for tests: needs no gnuplot)")
    p.add_argument("--markdown", metavar="MD", help="also write the README section (markdown) to MD")
    p.add_argument("--eta", choices=("allreduce", "p2p"), default="allreduce",
                   help="the share of the link rate the modelled allreduce gets: from the measured ring "
                        "allreduce (default) or TCP's one-way goodput (an ideal transport)")
    a = ap.parse_args()
    if a.cmd == "fit":
        out = fit(a.raw, json.loads(a.machine))
        with open(a.output, "w") as fh:
            json.dump(out, fh, indent=1)
            fh.write("\n")
    else:
        with open(a.constants) as fh:
            consts = json.load(fh)
        predict(consts, a.png, a.table_only, a.eta, a.markdown)


if __name__ == "__main__":
    main()
