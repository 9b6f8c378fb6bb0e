#!/usr/bin/env python3
"""bench/bench.py - lp2p side by side with js-libp2p, go-libp2p, rust-libp2p and with the physical limits
(driven by bench/run).

Every round measures, back to back: the limits (bench_limits: raw TCP, ChaCha20-Poly1305, XX crypto), the
lp2p <-> lp2p figures (bench_swarm serve/client, two processes) and the js-libp2p <-> js-libp2p figures
(bench/js/bench-peer.mjs serve/client, two processes, pinned Node 22 + npm packages), and the same for
go-libp2p (`go-peer bench serve|client`, tests/interop/go, release build by scripts/deps) and rust-libp2p
(`rust-peer bench serve|client`, tests/interop/rust) when their binaries are built. Ratios are computed
per round (each figure against the baseline measured in the same round) and the median over the rounds is
reported. The listener RSS per idle connection is measured once at the end, with fresh listeners.

Usage: bench/bench.py --build-dir DIR [--json FILE] [--rounds N] [--quick] [--no-js] [--no-go] [--no-rust]
                      [--no-rss] [--no-renice] [--micro-json FILE]
Prints a markdown report on stdout and writes the JSON (default bench/results.json)."""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf('SC_CLK_TCK')
PEERS = ('js', 'go', 'rust')  # the other implementations, in column order
PEER_NAMES = {'js': 'js-libp2p', 'go': 'go-libp2p', 'rust': 'rust-libp2p'}
CACHE = os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'lp2p')


def log(msg):
    print(f'[bench {time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def proc_cpu(pid):
    """user+system CPU seconds of a live process (all threads)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return float('nan')


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Failure(Exception):
    pass


# ---- implementations ----------------------------------------------------------------------------------------
class Impl:
    def __init__(self, name, serve_cmd, client_cmd):
        self.name, self.serve_cmd, self.client_cmd = name, serve_cmd, client_cmd
        self.proc = None
        self.addr = self.pid = None

    def start(self):
        self.proc = subprocess.Popen(self.serve_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise Failure(f'{self.name} server did not start')
        ev = json.loads(line)
        self.addr, self.pid = ev['addrs'][0], ev['pid']
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, test, *args, timeout=180, dial_impl=None):
        """Runs one client invocation; returns its result lines (dicts) with the server's CPU seconds added."""
        srv = dial_impl or self
        cmd = self.client_cmd + ['--dial', srv.addr, '--test', test, '--timeout', str(timeout)] + [str(a) for a in args]
        c0 = proc_cpu(srv.pid)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            raise Failure(f'{self.name} {test}: client timed out')
        c1 = proc_cpu(srv.pid)
        res = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith('{')]
        errs = [r['error'] for r in res if 'error' in r]
        if p.returncode != 0 or errs or not res:
            raise Failure(f'{self.name} {test}: {errs[0] if errs else "exit " + str(p.returncode)} '
                          f'{p.stderr.strip()[-300:]}')
        for r in res:
            r['server_cpu'] = c1 - c0
        return res


# ---- one round ----------------------------------------------------------------------------------------------
def run_limits(build):
    p = subprocess.run([os.path.join(build, 'bench', 'bench_limits'), '--json', '/dev/stdout'],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise Failure('bench_limits failed: ' + p.stderr[-300:])
    out = {}
    for ln in p.stdout.splitlines():
        if ln.startswith('{'):
            r = json.loads(ln)
            out[r['name']] = r['value']
    return out


def bulk_limit(L):
    """The modelled bulk limit (see MODEL text)."""
    tx = 1.0 / L['chacha_enc'] + L['tcp_bulk_tx_cpu_per_byte']
    rx = 1.0 / L['chacha_dec'] + L['tcp_bulk_rx_cpu_per_byte']
    return min(1.0 / max(tx, rx), L['tcp_bulk'])


class Soft:
    """For the go/rust peers: a failing test loses its figures (reported as errors), not the whole round."""
    def __init__(self, impl, errors):
        self.impl, self.errors = impl, errors
        self.name = impl.name

    def client(self, test, *args, **kw):
        try:
            return self.impl.client(test, *args, **kw)
        except Failure as e:
            self.errors.append(str(e))
            log(f'FAILED: {e}')
            return [{}]


def run_impl(impl, P):
    """All per-round tests of one implementation; returns a dict of figures."""
    if impl.name in PEERS and impl.name != 'js':
        errs = []
        f = run_impl_tests(Soft(impl, errs), P)
        f['errors'] = errs
        return f
    return run_impl_tests(impl, P)


def run_impl_tests(impl, P):
    """The figures of one implementation; a test that failed on a Soft impl (empty result) is left out."""
    f = {}
    r = impl.client('bulk', '--bytes', P['bulk_bytes'][impl.name])[0]
    if r:
        f['bulk_wall'] = r['bytes'] / r['seconds']
        f['bulk_percore'] = r['bytes'] / max(r['cpu'], r['server_cpu'], 1e-9)
        f['bulk_cpu'] = (r['cpu'], r['server_cpu'], r['seconds'])
    r = impl.client('connrate', '--count', P['lat_count'][impl.name], '--concurrency', 1)[0]
    if r:
        f['dial_lat_p50'], f['dial_lat_p90'] = r['lat_p50'], r['lat_p90']
    r = impl.client('connrate', '--count', P['rate_count'][impl.name], '--concurrency', P['rate_conc'],
                    '--seconds', P['rate_seconds'])[0]
    if r:
        f['conn_rate_wall'] = r['count'] / r['seconds']
        f['conn_rate_percore'] = r['count'] / max(r['cpu'], r['server_cpu'], 1e-9)
        f['conn_cpu_per_conn'] = (r['cpu'] / r['count'], r['server_cpu'] / r['count'])
        f['conn_rate_lat_p50'] = r['lat_p50']
    r = impl.client('echo', '--count', P['echo_count'][impl.name], '--size', 32)[0]
    if r:
        f['echo_p50'], f['echo_mean'] = r['rtt_p50'], r['rtt_mean']
    r = impl.client('ping', '--count', P['ping_count'][impl.name])[0]
    if r:
        f['ping_p50'], f['ping_proto_p50'] = r['wall_p50'], r['rtt_p50']
    r = impl.client('streams', '--streams', 1000, '--bytes', 65536)[0]
    if r:
        f['streams_wall'] = r['bytes'] / r['seconds']
        f['streams_percore'] = r['bytes'] / max(r['cpu'], r['server_cpu'], 1e-9)
        f['streams_retries'] = r.get('retries', 0)
    return f


def run_rss(impl, client_impl, P):
    """Fresh listener; client_impl's conns test dials it. Returns the list of conns results."""
    impl.start()
    try:
        steps = P['rss_steps']
        res = client_impl.client('conns', '--steps', ','.join(map(str, steps)), '--server-pid', impl.pid,
                                 '--inflight', 32, '--settle-ms', P['rss_settle_ms'], '--seconds',
                                 P['rss_seconds'][impl.name], timeout=P['rss_seconds'][impl.name] + 120,
                                 dial_impl=impl)
    finally:
        impl.stop()
    return res


# ---- report -------------------------------------------------------------------------------------------------
MODEL = ('bulk limit L = min(T, 1 / max(1/E + c_tx, 1/D + c_rx)): the sender core encrypts (E = ChaCha20-Poly1305 '
         'encrypt rate of one 65519-byte Noise frame, CPU time) and sends (c_tx = CPU s/B of a raw TCP sender), the '
         'receiver core receives (c_rx) and decrypts (D); T = raw TCP loopback wall rate. '
         'Per-core handshake bound = 1 / (X25519 keygen + 3 X25519 DH + Ed25519 sign + Ed25519 verify), CPU time.')


def fmt(v, unit):
    if v is None:
        return 'n/a'
    if unit == 'B/s':
        return f'{v / 1048576:.0f} MiB/s'
    if unit == 's':
        return f'{v * 1e6:.1f} us' if v < 1e-3 else f'{v * 1e3:.2f} ms'
    if unit == '/s':
        return f'{v:.0f}/s'
    if unit == 'KiB':
        return f'{v:.1f} KiB'
    return f'{v:.3g}'


def build_rows(rounds, rss, P):
    """Summary rows: figure, lp2p, js, baseline, target, ratio (median of per-round ratios), verdict, lp2p/js."""
    rows = []

    def per_round(key, base_fn, impl='lp2p'):
        out = []
        for rd in rounds:
            v = rd.get(impl, {}).get(key)
            b = base_fn(rd)
            out.append(v / b if v is not None and b else None)
        return median(out)

    def vs(key, other, higher_better=True):
        out = []
        for rd in rounds:
            a, b = rd.get('lp2p', {}).get(key), rd.get(other, {}).get(key)
            if a is not None and b:
                out.append(a / b if higher_better else b / a)
        return median(out)

    def val(key, impl):
        return median([rd.get(impl, {}).get(key) for rd in rounds])

    def base(fn):
        return median([fn(rd) for rd in rounds])

    def row(name, key, unit, base_fn, base_desc, target_desc, ok_fn, higher_better=True):
        ratio = per_round(key, base_fn) if base_fn else None
        js_ratio = per_round(key, base_fn, 'js') if base_fn else None
        lp = val(key, 'lp2p')
        verdict = '' if ratio is None else ('PASS' if ok_fn(ratio) else 'MISS')
        r = {'figure': name, 'key': key, 'unit': unit, 'lp2p': lp,
             'baseline': base(base_fn) if base_fn else None, 'baseline_desc': base_desc,
             'target': target_desc, 'ratio': ratio, 'js_ratio': js_ratio, 'verdict': verdict,
             'higher_better': higher_better}
        for o in PEERS:
            r[o] = val(key, o)
            r[f'lp2p_vs_{o}'] = vs(key, o, higher_better)
        rows.append(r)

    lim = lambda rd: bulk_limit(rd['limits'])
    hs = lambda rd: 1.0 / rd['limits']['xx_crypto_side']
    rtt = lambda rd: rd['limits']['tcp_rtt_32_p50']
    row('bulk, 1 stream (perf upload), wall', 'bulk_wall', 'B/s', lim, 'modelled limit L', '>= 0.9 x L',
        lambda r: r >= 0.9)
    row('bulk, per core (bytes / CPU-s of the busier process)', 'bulk_percore', 'B/s', lim, 'modelled limit L',
        '>= 0.9 x L', lambda r: r >= 0.9)
    row('new connections/s (8 dialers), wall', 'conn_rate_wall', '/s', hs, 'per-core XX crypto bound',
        '>= 0.5 x bound', lambda r: r >= 0.5)
    row('new connections/s, per core (conns / CPU-s of the busier process)', 'conn_rate_percore', '/s', hs,
        'per-core XX crypto bound', '>= 0.5 x bound', lambda r: r >= 0.5)
    row('dial latency p50 (dial -> ready, 1 dialer)', 'dial_lat_p50', 's', lambda rd: 1e-3, '1 ms', '<= 1 ms',
        lambda r: r <= 1.0, higher_better=False)
    row('32-byte echo RTT p50, one stream', 'echo_p50', 's', rtt, 'raw TCP 32 B RTT p50', '<= 1.3 x',
        lambda r: r <= 1.3, higher_better=False)
    ep = lambda rd: rd['limits'].get('tcp_rtt_32_epoll_p50')
    row('  same, against the event-loop floor (epoll_wait before each read)', 'echo_p50', 's', ep,
        'raw TCP 32 B RTT p50 via epoll', '(information)', lambda r: True, higher_better=False)
    rows[-1]['verdict'] = ''
    row('ping RTT p50 (new stream per ping, call -> result)', 'ping_p50', 's', rtt, 'raw TCP 32 B RTT p50',
        '<= 2 x', lambda r: r <= 2.0, higher_better=False)
    row('  ping, protocol-reported RTT (write -> echo, stream already negotiated)', 'ping_proto_p50', 's', rtt,
        'raw TCP 32 B RTT p50', '(information)', lambda r: True, higher_better=False)
    rows[-1]['verdict'] = ''
    row('1000 streams x 64 KiB, wall', 'streams_wall', 'B/s', lambda rd: rd['lp2p']['bulk_wall'],
        'single-stream bulk (same impl, same round)', '>= 0.8 x', lambda r: r >= 0.8)
    # the js ratio of the streams rows must use js's own single-stream rate
    rows[-1]['js_ratio'] = median([rd['js']['streams_wall'] / rd['js']['bulk_wall'] for rd in rounds if 'js' in rd])
    row('1000 streams x 64 KiB, per core', 'streams_percore', 'B/s', lambda rd: rd['lp2p']['bulk_percore'],
        'single-stream bulk per core (same impl, same round)', '>= 0.8 x', lambda r: r >= 0.8)
    rows[-1]['js_ratio'] = median([rd['js']['streams_percore'] / rd['js']['bulk_percore'] for rd in rounds
                                   if 'js' in rd])

    for impl in ('lp2p',) + PEERS:
        pts = rss.get(impl) or []
        if not pts:
            continue
        r0 = pts[0]['server_rss_kib']
        for p in pts[1:]:
            per = (p['server_rss_kib'] - r0) / p['conns'] if p['conns'] else None
            name = f'listener RSS per idle connection at {p["conns"]}' + (' (partial: time budget)' if p.get('partial') else '')
            ok = per is not None and per <= 8.0
            rows.append({'figure': f'{name} [{impl}]', 'key': f'rss_{impl}_{p["conns"]}', 'unit': 'KiB',
                         impl: per, 'baseline': None, 'baseline_desc': f'RSS at 0 = {r0} KiB',
                         'target': '<= 8 KiB', 'ratio': per / 8.0 if per is not None else None,
                         'verdict': ('PASS' if ok else 'MISS') if impl == 'lp2p' else '',
                         'server_rss_kib': p['server_rss_kib'], 'conns': p['conns']})
    held = max([p['conns'] for p in rss.get('lp2p') or [{'conns': 0}]])
    if rss.get('lp2p') is not None:
        r = {'figure': 'concurrent connections held by one listener', 'key': 'conns_held', 'unit': '',
             'lp2p': held, 'target': f'{P["rss_steps"][-1]}',
             'verdict': 'PASS' if held >= P['rss_steps'][-1] else 'MISS'}
        for o in PEERS:
            r[o] = max([p['conns'] for p in rss.get(o) or [{'conns': 0}]]) if rss.get(o) else None
        rows.append(r)
    return rows


def print_report(meta, rows, rounds):
    print('\n## lp2p vs js-libp2p, go-libp2p, rust-libp2p and the physical limits\n')
    print(f'- date {meta["date"]}, git {meta["git"]}, {meta["cpus"]} CPUs, kernel {meta["kernel"]}')
    print(f'- load average before {meta["load_before"]}, after {meta["load_after"]}; per round: '
          f'{", ".join(rd["load"] for rd in rounds)}; scheduling: {meta["renice"]}')
    print(f'- {len(rounds)} round(s); every ratio is the median of per-round ratios (each figure against the '
          'baseline measured in the same round); values are medians over the rounds')
    print(f'- model: {MODEL}\n')
    print('lp2p/X columns: lp2p\'s figure over X\'s, oriented so that > 1 means lp2p is better (faster, more, or '
          'lower latency/RSS); median of per-round ratios.\n')
    print('| figure | lp2p | js-libp2p | go-libp2p | rust-libp2p | baseline | target | lp2p ratio | verdict | js ratio '
          '| lp2p/js | lp2p/go | lp2p/rust |')
    print('|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|')
    for r in rows:
        u = r['unit']
        lp = fmt(r.get('lp2p'), u) if u else str(r.get('lp2p'))
        others = [fmt(r.get(o), u) if u else str(r.get(o) if r.get(o) is not None else '') for o in PEERS]
        if r.get('baseline') is not None:
            b = f'{fmt(r["baseline"], u if u != "KiB" else "")} ({r["baseline_desc"]})'
        else:
            b = r.get('baseline_desc', '')
        ratio = f'{r["ratio"]:.2f}' if r.get('ratio') is not None else ''
        jr = f'{r["js_ratio"]:.2f}' if r.get('js_ratio') is not None else ''
        vs = [f'{r[f"lp2p_vs_{o}"]:.2f}' if r.get(f'lp2p_vs_{o}') else '' for o in PEERS]
        print(f'| {r["figure"]} | {lp} | {" | ".join(others)} | {b} | {r.get("target", "")} | {ratio} '
              f'| {r.get("verdict", "")} | {jr} | {" | ".join(vs)} |')
    print('\nPer round (lp2p / js; go and rust figures are in the JSON rounds):\n')
    print('| round | load | L (bulk limit) | XX bound | TCP RTT p50 | lp2p bulk | js bulk | lp2p conn/s | js conn/s '
          '| lp2p CPU/conn client+server | js CPU/conn client+server |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for i, rd in enumerate(rounds):
        L = rd['limits']
        lp, js = rd.get('lp2p', {}), rd.get('js', {})
        cpc = lambda f: (f'{f["conn_cpu_per_conn"][0] * 1e3:.2f} + {f["conn_cpu_per_conn"][1] * 1e3:.2f} ms'
                         if f.get('conn_cpu_per_conn') else 'n/a')
        print(f'| {i + 1} | {rd["load"]} | {fmt(bulk_limit(L), "B/s")} | {1 / L["xx_crypto_side"]:.0f}/s '
              f'| {fmt(L["tcp_rtt_32_p50"], "s")} | {fmt(lp.get("bulk_wall"), "B/s")} | {fmt(js.get("bulk_wall"), "B/s")} '
              f'| {fmt(lp.get("conn_rate_wall"), "/s")} | {fmt(js.get("conn_rate_wall"), "/s")} | {cpc(lp)} | {cpc(js)} |')
    L = rounds[0]['limits']
    print('\nLimits (round 1): ' + ', '.join(
        f'{k} {fmt(v, "B/s" if k in ("tcp_bulk", "chacha_enc", "chacha_dec") else "s") if not k.endswith("rate") else f"{v:.0f}/s"}'
        for k, v in L.items() if not k.endswith('per_byte')))


# ---- main ---------------------------------------------------------------------------------------------------
def params(quick):
    P = {
        'rounds': 5,
        'bulk_bytes': {'lp2p': 384 << 20, 'js': 384 << 20, 'go': 384 << 20, 'rust': 384 << 20},
        'lat_count': {'lp2p': 300, 'js': 60, 'go': 300, 'rust': 300},
        'rate_count': {'lp2p': 3000, 'js': 100000, 'go': 100000, 'rust': 100000},
        'rate_conc': 8,
        'rate_seconds': 3,
        'echo_count': {'lp2p': 5000, 'js': 1000, 'go': 5000, 'rust': 5000},
        'ping_count': {'lp2p': 1000, 'js': 200, 'go': 1000, 'rust': 1000},
        'rss_steps': [1000, 10000],
        'rss_settle_ms': 2000,
        'rss_seconds': {'lp2p': 120, 'js': 150, 'go': 150, 'rust': 150},
    }
    if quick:
        P.update({'rounds': 1, 'bulk_bytes': {k: 96 << 20 for k in ('lp2p',) + PEERS},
                  'lat_count': {'lp2p': 100, 'js': 20, 'go': 100, 'rust': 100}, 'rate_seconds': 1,
                  'echo_count': {'lp2p': 1000, 'js': 200, 'go': 1000, 'rust': 1000},
                  'ping_count': {'lp2p': 200, 'js': 50, 'go': 200, 'rust': 200},
                  'rss_steps': [1000], 'rss_settle_ms': 1000,
                  'rss_seconds': {'lp2p': 60, 'js': 30, 'go': 30, 'rust': 30}})
    return P


def renice(enable):
    """Raise this session's autogroup priority (the kernel schedules autogroups fairly, so the per-process nice
    value alone does not help against other sessions' builds); children inherit it. Restored at exit."""
    if not enable:
        return 'normal priority (--no-renice)', None
    try:
        with open('/proc/self/autogroup') as f:
            old = f.read().split('nice')[-1].strip()
        with open('/proc/self/autogroup', 'w') as f:
            f.write('-10')
        return 'session autogroup nice -10 (restored afterwards)', old
    except OSError as e:
        return f'normal priority (autogroup renice failed: {e.strerror})', None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build-dir', required=True)
    ap.add_argument('--json', default=os.path.join(ROOT, 'bench', 'results.json'))
    ap.add_argument('--rounds', type=int)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--no-js', action='store_true')
    ap.add_argument('--no-go', action='store_true')
    ap.add_argument('--no-rust', action='store_true')
    ap.add_argument('--no-rss', action='store_true')
    ap.add_argument('--no-renice', action='store_true')
    ap.add_argument('--micro-json', help='JSON lines of the micro-benchmarks, embedded in the output')
    a = ap.parse_args()
    P = params(a.quick)
    if a.rounds:
        P['rounds'] = a.rounds
    t_start = time.time()
    git = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    prio, old_nice = renice(not a.no_renice)
    meta = {'date': time.strftime('%Y-%m-%d %H:%M:%S'), 'git': git, 'cpus': os.cpu_count(),
            'kernel': platform.release(), 'load_before': loadavg(), 'renice': prio, 'params': P}
    bs = os.path.join(a.build_dir, 'bench', 'bench_swarm')
    lp2p = Impl('lp2p', [bs, 'serve'], [bs, 'client'])
    impls = [lp2p]
    tmp = None
    if not a.no_js:
        node = os.path.join(ROOT, 'scripts', 'node')
        mods = os.path.join(ROOT, 'tests', 'interop', 'node_modules')
        if not os.path.isdir(mods):
            log('tests/interop/node_modules is missing (run scripts/deps): js-libp2p is skipped')
        else:
            tmp = tempfile.mkdtemp(prefix='lp2p-bench-js.')
            shutil.copy(os.path.join(ROOT, 'bench', 'js', 'bench-peer.mjs'), tmp)
            os.symlink(mods, os.path.join(tmp, 'node_modules'))
            peer = os.path.join(tmp, 'bench-peer.mjs')
            impls.append(Impl('js', [node, peer, 'serve'], [node, peer, 'client']))
    for name, off in (('go', a.no_go), ('rust', a.no_rust)):
        exe = os.path.join(CACHE, 'bin', f'{name}-peer')
        if off:
            continue
        if not os.access(exe, os.X_OK):
            log(f'{exe} is missing (scripts/deps builds it): {PEER_NAMES[name]} is skipped')
            continue
        impls.append(Impl(name, [exe, 'bench', 'serve'], [exe, 'bench', 'client']))
    rounds, rss, errors = [], {}, []
    try:
        for impl in impls:
            impl.start()
        for i in range(P['rounds']):
            rd = {'load': loadavg()}
            log(f'round {i + 1}/{P["rounds"]}: limits (load {rd["load"]})')
            rd['limits'] = run_limits(a.build_dir)
            for impl in impls:
                log(f'round {i + 1}: {impl.name}')
                try:
                    rd[impl.name] = run_impl(impl, P)
                except Failure as e:
                    errors.append(str(e))
                    log(f'FAILED: {e}')
            rounds.append(rd)
        for impl in impls:
            impl.stop()
        if not a.no_rss:
            for impl in impls:
                log(f'listener RSS: {impl.name} listener, lp2p dialers, steps {P["rss_steps"]}')
                try:
                    rss[impl.name] = run_rss(impl, lp2p, P)
                except Failure as e:
                    errors.append(str(e))
                    log(f'FAILED: {e}')
    finally:
        for impl in impls:
            impl.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if old_nice is not None:
            try:
                with open('/proc/self/autogroup', 'w') as f:
                    f.write(old_nice)
            except OSError:
                pass
    meta['load_after'] = loadavg()
    meta['seconds'] = round(time.time() - t_start, 1)
    rows = build_rows(rounds, rss, P) if rounds and all('lp2p' in rd for rd in rounds) else []
    print_report(meta, rows, rounds)
    if errors:
        print('\nErrors:\n' + '\n'.join(f'- {e}' for e in errors))
    micro = []
    if a.micro_json and os.path.exists(a.micro_json):
        with open(a.micro_json) as f:
            micro = [json.loads(ln) for ln in f if ln.startswith('{')]
    doc = {'meta': meta, 'model': MODEL, 'summary': rows, 'rounds': rounds, 'rss': rss, 'micro': micro,
           'errors': errors}
    with open(a.json, 'w') as f:
        json.dump(doc, f, indent=1, default=lambda o: list(o) if isinstance(o, tuple) else str(o))
    print(f'\nJSON: {a.json} ({meta["seconds"]} s)')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
