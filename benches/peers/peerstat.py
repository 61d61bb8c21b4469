#!/usr/bin/env python3
"""Process sampling, scraping and summaries for the peer benchmarks.

  peerstat.py sample  --pids FILE --hosts FILE --every SECS --until EPOCH --out FILE
      Every SECS (until EPOCH) reads, for each pid listed in FILE (re-read
      each time, one pid a line): utime+stime from /proc/PID/stat, VmRSS and
      Threads from /proc/PID/status, and its TCP sockets (fd -> inode ->
      /proc/net/tcp) that are connected to one of the hosts. Appends one JSON
      line per sample to --out.

  peerstat.py scrape  --targets FILE --every SECS --until EPOCH --out FILE [--workers N]
      Every SECS GETs each URL listed in FILE (one per line, 127.0.0.1 only),
      N at a time (default 16), like Prometheus: header
      X-Prometheus-Scrape-Timeout-Seconds = SECS and a timeout of SECS for the
      whole GET (body included: a later answer counts as timed out). Appends
      one JSON line per GET: status, bytes, samples (non-comment lines),
      mongodb_up value, the instances whose `mongodb_up{instance=...}` is 1
      (Percona's /scrapeall), seconds.

  peerstat.py summary --peer NAME --samples FILE [--scrapes FILE]
                      [--telegraf-output FILE] [--otlp-json FILE]
                      [--otel-telemetry FILE] [--log FILE ...] --hosts FILE
                      --interval SECS --duration SECS --out FILE
      Writes the JSON summary and prints a one-line one.

Standard library only; every loop is bounded by --until.
"""

import argparse
import json
import math
import os
import re
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_lines(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip() and not l.startswith("#")]
    except OSError:
        return []


def hex_addr(a):
    """'0100007F:6989' -> '127.0.0.1:27017' (IPv4 only)."""
    ip, port = a.split(":")
    b = bytes.fromhex(ip)[::-1]
    return "%d.%d.%d.%d:%d" % (b[0], b[1], b[2], b[3], int(port, 16))


def tcp_table():
    """inode -> (local, remote, state) for IPv4 TCP sockets."""
    out = {}
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                out[p[9]] = (hex_addr(p[1]), hex_addr(p[2]), p[3])
    except OSError:
        pass
    return out


def proc_sample(pid, hosts, table):
    try:
        with open("/proc/%s/stat" % pid) as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])
        rss_kb = threads = 0
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        per_host = {}
        sockets = 0
        for fd in os.listdir("/proc/%s/fd" % pid):
            try:
                link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", link)
            if not m:
                continue
            sockets += 1
            t = table.get(m.group(1))
            # state 01 = ESTABLISHED
            if t and t[2] == "01" and t[1] in hosts:
                per_host[t[1]] = per_host.get(t[1], 0) + 1
        return {
            "pid": int(pid),
            "cpu_s": ticks / CLK_TCK,
            "rss_kb": rss_kb,
            "threads": threads,
            "sockets": sockets,
            "host_sockets": per_host,
        }
    except (OSError, ValueError, IndexError):
        return None


def cmd_sample(a):
    hosts = set(read_lines(a.hosts))
    with open(a.out, "a") as out:
        while time.time() < a.until:
            t0 = time.time()
            table = tcp_table()
            procs = [s for s in (proc_sample(p, hosts, table) for p in read_lines(a.pids)) if s]
            out.write(json.dumps({"t": t0, "procs": procs}) + "\n")
            out.flush()
            time.sleep(max(0.0, a.every - (time.time() - t0)))


UP_RE = re.compile(rb'^mongodb_up(?:\{([^}\n]*)\})? (\S+)', re.M)
NAME_RE = re.compile(rb'^([a-zA-Z_:][a-zA-Z0-9_:]*)', re.M)
INSTANCE_RE = re.compile(rb'instance="([^"]*)"')


def scrape_one(url, timeout, header_secs=None):
    """One GET with a deadline of `timeout` seconds for the whole answer. The
    body is read in 1 MiB chunks and only counted (regexes over each chunk),
    so a /scrapeall of 100 MB neither sits in memory nor makes this reader
    the bottleneck. ttfb_secs: until the status line and headers arrived
    (Percona's handler gathers every target before it writes a byte)."""
    t0 = time.time()
    deadline = t0 + timeout
    rec = {"t": t0, "url": url}
    samples = nbytes = mongodb_samples = 0
    names = {}
    up_value = None
    up_hosts = []

    def count(buf):
        nonlocal samples, mongodb_samples, up_value
        for n in NAME_RE.findall(buf):
            names[n] = names.get(n, 0) + 1
        for lab, v in UP_RE.findall(buf):
            inst = INSTANCE_RE.search(lab)
            if inst:
                if float(v) == 1.0:
                    up_hosts.append(inst.group(1).decode())
            elif up_value is None:
                up_value = float(v)

    try:
        # Percona's /scrapeall parses the header with strconv.Atoi: an integer.
        hs = header_secs if header_secs else timeout
        req = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "%d" % max(1, int(hs))})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            rec["status"] = r.status
            rec["ttfb_secs"] = round(time.time() - t0, 4)
            rest = b""
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                nbytes += len(chunk)
                buf = rest + chunk
                cut = buf.rfind(b"\n") + 1
                rest = buf[cut:]
                count(buf[:cut])
                if time.time() > deadline:
                    raise TimeoutError("answer not complete within %gs" % timeout)
            count(rest)
        if time.time() > deadline:
            raise TimeoutError("answer not complete within %gs" % timeout)
    except Exception as e:  # noqa: BLE001 - any failure is a failed scrape
        rec["status"] = getattr(e, "code", 0) or 0
        rec["error"] = (type(e).__name__ + ": " + str(e))[:200]
    samples = sum(names.values())
    mongodb_samples = sum(c for n, c in names.items() if n.startswith(b"mongodb_"))
    rec["bytes"] = nbytes
    rec["samples"] = samples
    rec["families"] = len(names)
    rec["mongodb_families"] = sum(1 for n in names if n.startswith(b"mongodb_"))
    rec["mongodb_samples"] = mongodb_samples
    rec["mongodb_up"] = up_value
    if up_hosts:
        rec["up_hosts"] = up_hosts
    rec["secs"] = round(time.time() - t0, 4)
    return rec


def cmd_scrape(a):
    """Like Prometheus: every target once per interval, concurrently (16 at a
    time). The exporter is told the interval (X-Prometheus-Scrape-Timeout-
    Seconds); the client waits --timeout (default: the interval) for the
    answer, so that a study can see how long a late answer really takes; a
    scrape counts as ok only when complete within the interval (summary).
    Rounds are on the grid --start + k * interval (like a ticker: a round
    that overruns skips the ticks it missed), and a round starts only when
    its interval ends by --until, so DURATION / INTERVAL rounds fit (the
    caller waits for the last one to finish)."""
    from concurrent.futures import ThreadPoolExecutor

    targets = read_lines(a.targets)
    wait = a.timeout if a.timeout else a.every
    start = a.start if a.start else time.time()
    k = 0
    with open(a.out, "a") as out, ThreadPoolExecutor(max_workers=a.workers) as pool:
        while start + (k + 1) * a.every <= a.until + 0.01:
            time.sleep(max(0.0, start + k * a.every - time.time()))
            for rec in pool.map(lambda u: scrape_one(u, wait, a.every), targets):
                rec["round"] = k
                rec["in_time"] = rec.get("status") == 200 and rec["secs"] <= a.every
                out.write(json.dumps(rec) + "\n")
                out.flush()
            k = max(k + 1, int(math.ceil((time.time() - start) / a.every - 1e-6)))


def load_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def log_counts(paths):
    errors = warnings = 0
    examples = {}
    for p in paths:
        try:
            with open(p, errors="replace") as f:
                for line in f:
                    low = line.lower()
                    is_err = (" E! " in line) or ('"level":"error"' in low) or ("level=error" in low)
                    is_warn = (" W! " in line) or ('"level":"warn' in low) or ("level=warn" in low)
                    if is_err:
                        errors += 1
                        key = line.strip()
                        if key.startswith("{"):
                            # JSON logs (the collector): message and error, not the stack trace
                            try:
                                d = json.loads(key)
                                key = "%s: %s" % (d.get("msg", ""), str(d.get("error", ""))[:120])
                            except ValueError:
                                pass
                        key = re.sub(r"\d+", "N", key)[-160:]
                        examples[key] = examples.get(key, 0) + 1
                    elif is_warn:
                        warnings += 1
        except OSError:
            pass
    top = sorted(examples.items(), key=lambda kv: -kv[1])[:5]
    return errors, warnings, [{"count": c, "line": l} for l, c in top]


# Start times (epoch seconds) of the host gathers the last parse found, for
# the measured window of the summary.
GATHER_TIMES = []


def parse_lp(path):
    """Influx line protocol: per measurement, points and field names; per host, points and fields."""
    meas = {}
    hosts = {}
    stamps = set()
    points = fields_total = 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                # measurement,tags fields timestamp (no spaces in our tag values)
                try:
                    head, fields, ts = line.rsplit(" ", 2)
                except ValueError:
                    continue
                name = head.split(",", 1)[0]
                tags = dict(t.split("=", 1) for t in head.split(",")[1:] if "=" in t)
                names = [kv.split("=", 1)[0] for kv in fields.split(",")]
                m = meas.setdefault(name, {"points": 0, "fields": set()})
                m["points"] += 1
                m["fields"].update(names)
                h = tags.get("hostname", "?")
                hs = hosts.setdefault(h, {"points": 0, "fields": 0, "mongodb_points": 0})
                hs["points"] += 1
                hs["fields"] += len(names)
                if name == "mongodb":
                    hs["mongodb_points"] += 1
                    hs["mongodb_fields"] = len(names)
                    try:
                        GATHER_TIMES.append(int(ts) / 1e9)
                    except ValueError:
                        pass
                stamps.add(ts)
                points += 1
                fields_total += len(names)
    except OSError:
        pass
    return meas, hosts, stamps, points, fields_total


def _attr(v):
    """An OTLP JSON AnyValue -> its Python value."""
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v:
            return v[k]
    return None


def parse_otlp_json(path, hostset):
    """The file exporter's OTLP JSON lines. A host gather is a distinct
    (server.address:server.port, timeUnixNano) pair: the mongodb receiver
    stamps every point of one scrape of one host with the same time, and puts
    the host's address (from serverStatus.host) on every resource."""
    gathers = {}  # (host, ts) -> [datapoints, set of metric names, resources]
    lines = points = metrics = 0
    names_all = set()
    try:
        f = open(path, errors="replace")
    except OSError:
        f = None
    if f:
        with f:
            for line in f:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                lines += 1
                for rm in doc.get("resourceMetrics", []):
                    attrs = {a["key"]: _attr(a.get("value", {})) for a in rm.get("resource", {}).get("attributes", [])}
                    host = "%s:%s" % (attrs.get("server.address"), attrs.get("server.port"))
                    seen = set()
                    for sm in rm.get("scopeMetrics", []):
                        for m in sm.get("metrics", []):
                            metrics += 1
                            names_all.add(m.get("name"))
                            for kind in ("gauge", "sum", "histogram", "summary", "exponentialHistogram"):
                                for dp in m.get(kind, {}).get("dataPoints", []):
                                    g = gathers.setdefault((host, dp.get("timeUnixNano")), [0, set(), 0])
                                    g[0] += 1
                                    g[1].add(m.get("name"))
                                    if (host, dp.get("timeUnixNano")) not in seen:
                                        seen.add((host, dp.get("timeUnixNano")))
                                        g[2] += 1
                                    points += 1
    ok = {k: v for k, v in gathers.items() if k[0] in hostset and v[0] > 0}
    for (_, ts) in ok:
        try:
            GATHER_TIMES.append(int(ts) / 1e9)
        except (TypeError, ValueError):
            pass
    per_host = {}
    for (h, _), v in ok.items():
        per_host[h] = per_host.get(h, 0) + 1
    dps = [v[0] for v in ok.values()]
    mets = [len(v[1]) for v in ok.values()]
    return {
        "export_lines": lines,
        "host_gathers_ok": len(ok),
        "hosts_reporting": len(per_host),
        "gathers_per_host_min": min((per_host.get(h, 0) for h in hostset), default=0),
        "gathers_per_host_max": max(per_host.values(), default=0),
        "points_total": points,
        "metrics_total": metrics,
        "metric_names": len(names_all),
        "datapoints_per_host_gather": round(sum(dps) / len(dps), 1) if dps else 0,
        "datapoints_per_host_gather_min": min(dps, default=0),
        "datapoints_per_host_gather_max": max(dps, default=0),
        "metrics_per_host_gather": round(sum(mets) / len(mets), 1) if mets else 0,
        "metrics_per_host_gather_min": min(mets, default=0),
        "metrics_per_host_gather_max": max(mets, default=0),
        "resources_per_host_gather": round(sum(v[2] for v in ok.values()) / len(ok), 1) if ok else 0,
        "points_outside_hosts": sum(v[0] for k, v in gathers.items() if k[0] not in hostset),
    }


def parse_prom_totals(path):
    """Prometheus text -> {metric name: sum over its series} (otelcol's own telemetry)."""
    out = {}
    for line in read_lines(path):
        try:
            name = re.split(r"[{ ]", line, 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        except (ValueError, IndexError):
            continue
    return {k: round(v, 3) for k, v in sorted(out.items())
            if k.startswith(("otelcol_receiver_", "otelcol_scraper_", "otelcol_exporter_sent", "otelcol_exporter_send_failed"))}


def cmd_summary(a):
    hosts = read_lines(a.hosts)
    n = len(hosts)
    samples = load_jsonl(a.samples)
    last = samples[-1]["procs"] if samples else []
    cpu_total = sum(p["cpu_s"] for p in last)
    rss_last = sum(p["rss_kb"] for p in last) / 1024.0
    rss_max = max((sum(p["rss_kb"] for p in s["procs"]) for s in samples), default=0) / 1024.0
    threads = sum(p["threads"] for p in last)
    sock_hist = []
    for s in samples:
        per = {}
        for p in s["procs"]:
            for h, c in p["host_sockets"].items():
                per[h] = per.get(h, 0) + c
        sock_hist.append(per)
    sock_last = sock_hist[-1] if sock_hist else {}
    sock_max_any = max((max(per.values(), default=0) for per in sock_hist), default=0)
    errors, warnings, examples = log_counts(a.log or [])
    out = {
        "peer": a.peer,
        "n_hosts": n,
        "duration_s": a.duration,
        "interval_s": a.interval,
        "processes": len(last),
        "cpu_seconds_total": round(cpu_total, 3),
        "cpu_percent_of_one_core": round(100.0 * cpu_total / a.duration, 2) if a.duration else None,
        "cpu_ms_per_host_per_interval": round(1000.0 * cpu_total / n / max(1.0, a.duration / a.interval), 3) if n else None,
        "rss_mib_total": round(rss_last, 2),
        "rss_mib_total_max": round(rss_max, 2),
        "rss_mib_per_host": round(rss_last / n, 3) if n else None,
        "threads_total": threads,
        "sockets_to_hosts_total": sum(sock_last.values()),
        "sockets_per_host": round(sum(sock_last.values()) / n, 2) if n else None,
        "sockets_per_host_max": sock_max_any,
        "hosts_without_socket": sum(1 for h in hosts if sock_last.get(h, 0) == 0),
        "log_errors": errors,
        "log_warnings": warnings,
        "log_error_examples": examples,
    }
    if a.scrapes:
        sc = load_jsonl(a.scrapes)
        hostset = set(hosts)
        multi = any("up_hosts" in s or s.get("url", "").endswith("/scrapeall") for s in sc)
        def in_time(s):
            # HTTP 200 with the whole answer within the interval (Prometheus'
            # scrape_timeout = interval); older scrape files lack in_time.
            return s.get("status") == 200 and s.get("secs", 0) <= a.interval
        if multi:
            # Percona's /scrapeall: one GET answers for every host; ok = in
            # time; a host answered in an ok scrape when its
            # mongodb_up{instance="HOST"} is 1 (a late or cut answer counts
            # for no host: Prometheus would drop it whole).
            ok = [s for s in sc if in_time(s)]
            per = [len(hostset.intersection(s.get("up_hosts", []))) for s in ok]
            up_ever = {h for s in ok for h in s.get("up_hosts", [])} & hostset
            out["scrape_mode"] = "scrapeall"
            out["host_gathers_ok"] = sum(per)
            out["hosts_reporting"] = len(up_ever)
            for s_, c in zip(ok, per):
                GATHER_TIMES.extend([s_["t"]] * c)
            out["hosts_up_per_scrape_min"] = min(per, default=0)
            out["hosts_up_per_scrape_max"] = max(per, default=0)
            out["hosts_never_up"] = len(hostset - up_ever)
            out["hosts_never_up_examples"] = sorted(hostset - up_ever)[:10]
            # what late answers held (PERCONA_SCRAPE_TIMEOUT > interval)
            late = [s for s in sc if s.get("status") == 200 and not in_time(s)]
            out["scrapes_late"] = len(late)
            out["hosts_up_per_late_scrape_max"] = max(
                (len(hostset.intersection(s.get("up_hosts", []))) for s in late), default=0)
        else:
            # One GET per host (/metrics of its own exporter, or /scrape?target=).
            ok = [s for s in sc if in_time(s) and s.get("mongodb_up") == 1.0]
            out["scrape_mode"] = "per_host"
            out["host_gathers_ok"] = len(ok)
            out["hosts_reporting"] = len({s.get("url") for s in ok})
            GATHER_TIMES.extend(s_["t"] for s_ in ok)
        # one per host per interval that started within the run
        out["host_gathers_expected"] = n * int(math.ceil(a.duration / a.interval))
        out["scrapes_total"] = len(sc)
        out["scrapes_ok"] = len(ok)
        out["scrapes_failed"] = len(sc) - len(ok)
        out["scrape_errors"] = sorted({re.sub(r"\d+", "N", s["error"]) for s in sc if s.get("error")})[:5]
        out["samples_total"] = sum(s["samples"] for s in sc)
        out["bytes_total"] = sum(s["bytes"] for s in sc)
        out["samples_per_scrape"] = round(out["samples_total"] / len(sc), 1) if sc else 0
        good = sum(s["mongodb_samples"] for s in ok)
        out["mongodb_samples_per_host_gather"] = round(good / out["host_gathers_ok"], 1) if out["host_gathers_ok"] else 0
        out["values_per_host_gather"] = out["mongodb_samples_per_host_gather"]
        # kept for the older summaries' readers (per_host mode: the same figure)
        out["samples_per_scrape_per_host"] = (
            round(out["samples_total"] / len(sc) / max(1, n), 1) if multi else out["samples_per_scrape"])
        out["mongodb_families_per_scrape"] = max((s.get("mongodb_families", 0) for s in sc), default=0)
        secs = sorted(s.get("secs", 0) for s in sc)
        out["scrape_secs_max"] = secs[-1] if secs else 0
        out["scrape_secs_p50"] = secs[len(secs) // 2] if secs else 0
        ttfb = sorted(s["ttfb_secs"] for s in sc if "ttfb_secs" in s)
        out["scrape_ttfb_secs_max"] = ttfb[-1] if ttfb else None
        out["scrape_ttfb_secs_p50"] = ttfb[len(ttfb) // 2] if ttfb else None
    if a.otlp_json:
        out.update(parse_otlp_json(a.otlp_json, set(hosts)))
        out["values_per_host_gather"] = out["datapoints_per_host_gather"]
    if a.otel_telemetry:
        out["otelcol_telemetry"] = parse_prom_totals(a.otel_telemetry)
    if a.telegraf_output:
        meas, per_host, stamps, points, fields_total = parse_lp(a.telegraf_output)
        out["gathers_flushed"] = len(stamps)
        out["points_total"] = points
        out["fields_total"] = fields_total
        out["measurements"] = {k: {"points": v["points"], "fields": len(v["fields"])} for k, v in sorted(meas.items())}
        mp = [h["mongodb_points"] for h in per_host.values()]
        out["hosts_reporting"] = sum(1 for h in hosts if per_host.get(h, {}).get("mongodb_points", 0) > 0)
        out["host_gathers_ok"] = sum(mp)
        out["mongodb_fields_per_host_min"] = min((h.get("mongodb_fields", 0) for h in per_host.values()), default=0)
        out["mongodb_fields_per_host_max"] = max((h.get("mongodb_fields", 0) for h in per_host.values()), default=0)
        out["fields_per_host_per_gather"] = round(fields_total / max(1, sum(mp)), 1)
        out["values_per_host_gather"] = out["fields_per_host_per_gather"]
    gathers = out.get("host_gathers_ok")
    out["cpu_seconds_per_1000_host_gathers"] = (
        round(1000.0 * cpu_total / gathers, 3) if gathers else None)
    if a.warmup > 0 and samples:
        # The measured window, as `mongomon bench` measures the agent: from
        # WARMUP seconds after the start (the peer's start-up and first
        # gathers excluded) to the end. CPU from the samples at both ends;
        # host gathers that started inside; the RSS peak inside.
        t_first = samples[0]["t"]
        inside = [s for s in samples if s["t"] >= t_first + a.warmup]
        if len(inside) >= 2:
            w0, w1 = inside[0], inside[-1]
            cpu_at = lambda s: sum(p["cpu_s"] for p in s["procs"])  # noqa: E731
            wcpu = cpu_at(w1) - cpu_at(w0)
            # Gathers on the grid inside the window, with half an interval
            # of tolerance for start-up offsets: [w0 - I/2, w1 - I/2).
            half = a.interval / 2.0
            wg = sum(1 for t in GATHER_TIMES if w0["t"] - half <= t < w1["t"] - half)
            wsecs = w1["t"] - w0["t"]
            out["window"] = {
                "warmup_s": a.warmup,
                "secs": round(wsecs, 2),
                "cpu_seconds": round(wcpu, 3),
                "cores": round(wcpu / wsecs, 4) if wsecs > 0 else None,
                "host_gathers_ok": wg,
                "host_gathers_expected": int(n * round(wsecs / a.interval)),
                "cpu_seconds_per_1000_host_gathers": round(1000.0 * wcpu / wg, 3) if wg else None,
                "rss_mib_max": round(max(sum(p["rss_kb"] for p in s["procs"]) for s in inside) / 1024.0, 2),
                "rss_kib_per_host_max": round(max(sum(p["rss_kb"] for p in s["procs"]) for s in inside) / max(1, n), 1),
            }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    ok = out.get("host_gathers_ok", out.get("scrapes_ok"))
    print(
        "%s N=%d %ds/%ds: cpu %.2fs (%.1f%% of a core), rss %.1f MiB (%.2f/host), %d threads, "
        "%.2f sockets/host, ok=%s errors=%d, points=%s"
        % (
            a.peer, n, a.duration, a.interval, cpu_total, out["cpu_percent_of_one_core"] or 0,
            rss_last, out["rss_mib_per_host"] or 0, threads, out["sockets_per_host"] or 0,
            ok, errors, out.get("points_total", out.get("samples_total")),
        )
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--pids", required=True)
    s.add_argument("--hosts", required=True)
    s.add_argument("--every", type=float, default=1.0)
    s.add_argument("--until", type=float, required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("scrape")
    s.add_argument("--targets", required=True)
    s.add_argument("--every", type=float, default=10.0)
    s.add_argument("--until", type=float, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--workers", type=int, default=16)
    s.add_argument("--start", type=float, default=0.0,
                   help="epoch seconds of the first round (default: now)")
    s.add_argument("--timeout", type=float, default=0.0,
                   help="seconds the client waits for an answer (default: --every)")
    s = sub.add_parser("summary")
    s.add_argument("--peer", required=True)
    s.add_argument("--samples", required=True)
    s.add_argument("--scrapes")
    s.add_argument("--telegraf-output")
    s.add_argument("--otlp-json")
    s.add_argument("--otel-telemetry")
    s.add_argument("--log", action="append")
    s.add_argument("--hosts", required=True)
    s.add_argument("--interval", type=float, required=True)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--warmup", type=float,
                   default=float(os.environ.get("MONGOMON_BENCH_WARMUP_SECS", "0") or 0),
                   help="seconds excluded at the start for the `window` figures "
                        "(default: $MONGOMON_BENCH_WARMUP_SECS, else none)")
    s.add_argument("--out", required=True)
    a = p.parse_args()
    {"sample": cmd_sample, "scrape": cmd_scrape, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
