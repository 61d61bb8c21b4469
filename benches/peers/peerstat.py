#!/usr/bin/env python3
"""Process sampling, scraping and summaries for the peer benchmarks.

  peerstat.py sample  --pids FILE --hosts FILE --every SECS --until EPOCH --out FILE
      Every SECS (until EPOCH) reads, for each pid listed in FILE (re-read
      each time, one pid a line): utime+stime from /proc/PID/stat, VmRSS and
      Threads from /proc/PID/status, and its TCP sockets (fd -> inode ->
      /proc/net/tcp) that are connected to one of the hosts. Appends one JSON
      line per sample to --out.

  peerstat.py scrape  --targets FILE --every SECS --until EPOCH --out FILE
      Every SECS GETs each URL listed in FILE (one per line, 127.0.0.1 only),
      with a timeout of SECS, and appends one JSON line per GET: status,
      bytes, samples (non-comment lines), mongodb_up value, seconds.

  peerstat.py summary --peer NAME --samples FILE [--scrapes FILE]
                      [--telegraf-output FILE] [--log FILE ...] --hosts FILE
                      --interval SECS --duration SECS --out FILE
      Writes the JSON summary and prints a one-line one.

Standard library only; every loop is bounded by --until.
"""

import argparse
import json
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


def scrape_one(url, timeout):
    rec = {"t": time.time(), "url": url}
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
            rec["status"] = r.status
    except Exception as e:  # noqa: BLE001 - any failure is a failed scrape
        body = b""
        rec["status"] = getattr(e, "code", 0) or 0
        rec["error"] = str(e)[:200]
    text = body.decode("utf-8", "replace")
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    names = [re.split(r"[{ ]", l, 1)[0] for l in lines]
    up = [l for l in lines if l.startswith("mongodb_up")]
    rec["bytes"] = len(body)
    rec["samples"] = len(lines)
    rec["families"] = len(set(names))
    rec["mongodb_families"] = len({n for n in names if n.startswith("mongodb_")})
    rec["mongodb_samples"] = sum(1 for n in names if n.startswith("mongodb_"))
    rec["mongodb_up"] = float(up[0].split()[-1]) if up else None
    rec["secs"] = round(time.time() - rec["t"], 4)
    return rec


def cmd_scrape(a):
    """Like Prometheus: every target once per interval, concurrently (16 at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    targets = read_lines(a.targets)
    with open(a.out, "a") as out, ThreadPoolExecutor(max_workers=16) as pool:
        while time.time() < a.until:
            t0 = time.time()
            for rec in pool.map(lambda u: scrape_one(u, a.every), targets):
                out.write(json.dumps(rec) + "\n")
            out.flush()
            time.sleep(max(0.0, min(a.until - time.time(), a.every - (time.time() - t0))))


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
                        key = re.sub(r"\d+", "N", line.strip())[-160:]
                        examples[key] = examples.get(key, 0) + 1
                    elif is_warn:
                        warnings += 1
        except OSError:
            pass
    top = sorted(examples.items(), key=lambda kv: -kv[1])[:5]
    return errors, warnings, [{"count": c, "line": l} for l, c in top]


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
                stamps.add(ts)
                points += 1
                fields_total += len(names)
    except OSError:
        pass
    return meas, hosts, stamps, points, fields_total


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
        ok = [s for s in sc if s.get("status") == 200 and s.get("mongodb_up") == 1.0]
        out["scrapes_total"] = len(sc)
        out["scrapes_ok"] = len(ok)
        out["scrapes_failed"] = len(sc) - len(ok)
        out["samples_total"] = sum(s["samples"] for s in sc)
        out["bytes_total"] = sum(s["bytes"] for s in sc)
        out["samples_per_scrape_per_host"] = round(out["samples_total"] / len(sc), 1) if sc else 0
        out["mongodb_families_per_scrape"] = max((s.get("mongodb_families", 0) for s in sc), default=0)
        out["scrape_secs_max"] = max((s.get("secs", 0) for s in sc), default=0)
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
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    ok = out.get("scrapes_ok", out.get("host_gathers_ok"))
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
    s = sub.add_parser("summary")
    s.add_argument("--peer", required=True)
    s.add_argument("--samples", required=True)
    s.add_argument("--scrapes")
    s.add_argument("--telegraf-output")
    s.add_argument("--log", action="append")
    s.add_argument("--hosts", required=True)
    s.add_argument("--interval", type=float, required=True)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--out", required=True)
    a = p.parse_args()
    {"sample": cmd_sample, "scrape": cmd_scrape, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
