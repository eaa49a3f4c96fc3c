"""Emulator of Batsim 4.2.1 / SimGrid 3.32 (ptask_L07) on platforms WITH links (HDeepRM network="links").

Actors are Python generators that yield SimGrid simcalls; the kernel runs them in sub-rounds exactly like
EngineImpl::run (run all ready actors, then handle their simcalls in that order, then handle ended actions),
and advances time with the L07 full-update step (one list of actions in creation order: job ptasks, sleeps,
mailbox comms).  Mailbox comms: 1 byte; action remains = 1.0 (cost of an L07Action); rate = fair-bottleneck
value = min over the route's links of bandwidth (one comm at a time on the "server" mailbox, so no sharing);
loopback (master->master) = network/loopback-bw = 1e10, FATPIPE.

Decisions are replayed from a recorded transcript (reply k answers emulated message k).
usage: lkemu.py platform.xml workload.json transcript.jsonl out.jsonl [--noenergy-yields]
"""
import sys, json, re
from collections import deque
import numpy as np

PREC_REM = 1e-5 * 1e-9
PREC_DUR = 1e-9
LOOPBACK_BW = 10e9


def parse_speed(s):
    m = re.match(r'\s*([0-9.eE+-]+)\s*([a-zA-Z]*)', s)
    v = float(m.group(1)); u = m.group(2)
    return v * {'f': 1, '': 1, 'kf': 1e3, 'Mf': 1e6, 'Gf': 1e9, 'Tf': 1e12}[u]


def parse_bw(s):
    m = re.match(r'\s*([0-9.eE+-]+)\s*([a-zA-Z]*)', s)
    v = float(m.group(1)); u = m.group(2)
    mult = {'Bps': 1, 'kBps': 1e3, 'KBps': 1e3, 'MBps': 1e6, 'GBps': 1e9, 'TBps': 1e12,
            'bps': 1 / 8, 'kbps': 1e3 / 8, 'Kbps': 1e3 / 8, 'Mbps': 1e6 / 8, 'Gbps': 1e9 / 8, 'Tbps': 1e12 / 8}[u]
    # SimGrid's unit parser multiplies the value by the unit factor (xbt_parse_units): v * (1e9 / 8)? it
    # computes value * multiplier with multiplier = 1e9 then /8 for bits: keep both forms, see bw_variants
    return v * mult


def load_platform(p):
    txt = open(p).read()
    hosts = []
    for m in re.finditer(r'<host id="([^"]+)"[^>]*?speed="([^"]+)"(?:[^>]*?pstate="(\d+)")?', txt):
        name = m.group(1)
        if name == 'master_host':
            continue
        speeds = [parse_speed(x) for x in m.group(2).split(',')]
        hosts.append((name, speeds, int(m.group(3) or 0)))
    hosts.sort(key=lambda h: h[0].encode())
    links = {m.group(1): parse_bw(m.group(2))
             for m in re.finditer(r'<link id="([^"]+)"[^>]*?bandwidth="([^"]+)"', txt)}
    # zone of each host, route host->router links, zoneRoute zone->master links
    zone_of = {}; host_links = {}
    for zm in re.finditer(r'<zone id="([^"]+)" routing="Full">(.*?)</zone>', txt, re.S):
        zid, body = zm.group(1), zm.group(2)
        for hm in re.finditer(r'<host id="([^"]+)"', body):
            zone_of[hm.group(1)] = zid
        for rm in re.finditer(r'<route src="([^"]+)" dst="([^"]+)"[^>]*>(.*?)</route>', body, re.S):
            src, dst, rb = rm.groups()
            if src.startswith('rou'):
                continue
            host_links[src] = re.findall(r'<link_ctn id="([^"]+)"', rb)
    zone_links = {}
    for rm in re.finditer(r'<zoneRoute src="([^"]+)" dst="master"[^>]*>(.*?)</zoneRoute>', txt, re.S):
        zone_links[rm.group(1)] = re.findall(r'<link_ctn id="([^"]+)"', rm.group(2))
    route_bw = {}
    for name, _, _ in hosts:
        ls = host_links.get(name, []) + zone_links.get(zone_of.get(name), [])
        route_bw[name] = min(links[l] for l in ls) if ls else None
    return hosts, route_bw


class Act:
    __slots__ = ('kind', 'rem', 'rate', 'dur', 'on_done', 'alive', 'info')

    def __init__(s, kind, on_done, rem=1.0, rate=0.0, dur=-1.0, info=None):
        s.kind = kind; s.on_done = on_done; s.rem = rem; s.rate = rate; s.dur = dur; s.alive = True; s.info = info


class Comm:
    __slots__ = ('msg', 'src', 'sender', 'receiver', 'waiters', 'done', 'action', 'bw')

    def __init__(s, msg, src, sender, bw):
        s.msg = msg; s.src = src; s.sender = sender; s.receiver = None; s.waiters = []; s.done = False
        s.action = None; s.bw = bw


class Actor:
    def __init__(s, name, gen, host):
        s.name = name; s.gen = gen; s.host = host; s.val = None; s.req = None; s.dead = False


class Kernel:
    def __init__(s, plat, wl, transcript, energy_yields=True):
        hosts, s.route_bw = load_platform(plat)
        s.hnames = [h[0] for h in hosts]
        s.speeds = [h[1] for h in hosts]
        s.pstate = [h[2] for h in hosts]
        s.n = len(hosts)
        W = json.load(open(wl))
        s.profiles = W['profiles']
        s.jobs = {f"w0!{j['id']}": j for j in W['jobs']}
        L = [json.loads(l) for l in open(transcript)]
        s.replies = [x['msg'] for x in L if x['from'] == 'scheduler']
        s.energy_yields = energy_yields
        s.now = 0.0
        s.acts = []
        s.to_run = []
        s.upd = [0.0] * s.n          # energy plugin last_updated_ of each compute host
        s.sends = deque()            # unmatched send comms in mailbox "server"
        s.pending_recv = None        # unmatched receive comm of the server
        s.msgs = []                  # emitted Batsim messages (now_exact, events)
        s.running = {}               # job -> ptask action (for pstate changes)
        s.nsteps = 0; s.ncomm = 0
        s.rr_sleeps = 0
        s.tlog = []

    # -------------------------------------------------------------- actions
    def new_act(s, *a, **k):
        x = Act(*a, **k); s.acts.append(x); return x

    def ptask_rate(s, jid, alloc):
        c = float(s.profiles[s.jobs[jid]['profile']]['cpu'])
        return min(s.speeds[i][s.pstate[i]] / c for i in alloc)

    def step(s):
        acts = [a for a in s.acts if a.alive]; s.acts = acts
        delta = -1.0
        for a in acts:
            if a.kind != 's':
                if a.rate > 0:
                    v = a.rem / a.rate if a.rem > 0 else 0.0
                    if delta < 0 or v < delta: delta = v
            elif a.dur >= 0 and (delta < 0 or a.dur < delta):
                delta = a.dur
        if delta < 0:
            return None
        s.now = s.now + delta
        s.nsteps += 1
        done = []
        for a in acts:
            if a.kind != 's':
                a.rem = a.rem - a.rate * delta
                if a.rem < PREC_REM: a.rem = 0.0
                if a.rem <= 0: done.append(a)
            else:
                a.dur = a.dur - delta
                if a.dur < PREC_DUR: a.dur = 0.0
                if a.dur <= 0: done.append(a)
        for a in done:
            a.alive = False
        return done

    # -------------------------------------------------------------- actors & simcalls
    def spawn(s, name, gen, host):
        a = Actor(name, gen, host); s.to_run.append(a); return a

    def answer(s, actor, val=None):
        actor.val = val; s.to_run.append(actor)

    def start_comm(s, c):
        bw = LOOPBACK_BW if c.src is None else s.route_bw[s.hnames[c.src]]
        if '--uniform' in sys.argv: bw = float(sys.argv[sys.argv.index('--uniform') + 1])
        s.ncomm += 1

        def done(a, c=c):
            c.done = True
            if c.src is not None:
                s.upd[c.src] = s.now       # CpuAction::on_state_change: comm hosts updated
            for w in c.waiters:
                s.answer(w, c.msg)
        if '--comm-as-sleep' in sys.argv:
            c.action = s.new_act('s', done, dur=1.0 / bw)
        elif '--zero-comm' in sys.argv:
            c.action = s.new_act('c', done, rem=0.0, rate=1.0)
        else:
            c.action = s.new_act('c', done, rem=1.0, rate=bw)

    def handle(s, actor, req):
        t = req[0]
        if t == 'isend':
            if s.pending_recv is not None:
                c = s.pending_recv; s.pending_recv = None
                c.msg = req[1]; c.src = req[2]; c.sender = actor
                s.start_comm(c)
            else:
                c = Comm(req[1], req[2], actor, None)
                s.sends.append(c)
            s.answer(actor, c)
        elif t == 'irecv':
            if s.sends:
                c = s.sends.popleft(); s.start_comm(c)
            else:
                c = Comm(None, None, None, None); s.pending_recv = c
            c.receiver = actor
            s.answer(actor, c)
        elif t == 'wait':
            c = req[1]
            if c.done:
                s.answer(actor, c.msg)
            else:
                c.waiters.append(actor)
        elif t == 'sleep':
            s.new_act('s', lambda a, actor=actor: s.answer(actor, 'slept'), dur=req[1])
        elif t == 'update':
            s.upd[req[1]] = s.now; s.answer(actor)
        elif t == 'yield':
            s.answer(actor)
        elif t == 'create':
            s.spawn(*req[1]); s.answer(actor)
        elif t == 'set_pstate':
            h, st = req[1], req[2]
            s.pstate[h] = st; s.upd[h] = s.now
            for jid, (pt, alloc) in s.running.items():
                if h in alloc and pt.alive:
                    pt.rate = s.ptask_rate(jid, alloc)
            s.answer(actor)
        elif t == 'exec':
            jid, alloc = req[1], req[2]
            c = float(s.profiles[s.jobs[jid]['profile']]['cpu'])
            box = {}

            def pdone(a, actor=actor, box=box):
                if 'to' in box: box['to'].alive = False
                for h in box['alloc']: s.upd[h] = s.now
                s.answer(actor, 'ok')
            pt = s.new_act('p', pdone, rem=1.0, rate=s.ptask_rate(jid, alloc) if c > 0 else 1.0, info=jid)
            if c <= 0: pt.rem = 0.0
            box['pt'] = pt; box['alloc'] = alloc
            s.running[jid] = (pt, alloc)
            if len(alloc) == 1: s.upd[alloc[0]] = s.now
            s.answer(actor, box)
        elif t == 'wait_for':
            box, wt = req[1], req[2]
            if wt > 0:
                def tdone(a, actor=actor, box=box):
                    box['pt'].alive = False
                    for h in box['alloc']: s.upd[h] = s.now
                    s.answer(actor, 'timeout')
                box['to'] = s.new_act('s', tdone, dur=wt)
            # the ptask's on_done answers the actor
        else:
            raise ValueError(req)

    def run_subrounds(s):
        while s.to_run:
            ran = s.to_run; s.to_run = []
            for a in ran:
                try:
                    a.req = a.gen.send(a.val)
                except StopIteration:
                    a.req = None; a.dead = True
                a.val = None
            for a in ran:
                if a.req is not None:
                    s.handle(a, a.req)

    # -------------------------------------------------------------- Batsim actors
    def energy_all(s):
        if not s.energy_yields: return
        for h in range(s.n):
            if s.upd[h] < s.now:
                yield ('update', h)

    def energy_on(s, alloc):
        if not s.energy_yields: return
        for h in alloc:
            if s.upd[h] < s.now:
                yield ('update', h)

    def put(s, msg, src=None):
        c = yield ('isend', msg, src)
        yield ('wait', c)

    def submitter(s):
        if '--no-drift' in sys.argv:
            yield from s.put(('HELLO',))
        else:
            yield from s.put(('HELLO',))
        cur = np.longdouble(s.now)
        order = sorted(s.jobs, key=lambda k: (float(s.jobs[k]['subtime']), k))
        batch = []; first = True
        for jid in order:
            st = np.longdouble(float(s.jobs[jid]['subtime']))
            if st > cur:
                if batch:
                    yield from s.put(('SUB', batch)); batch = []
                    if '--no-drift' in sys.argv: cur = np.longdouble(s.now)
                yield ('sleep', float(st - cur))
                cur = np.longdouble(s.now)
            batch.append(jid)
            if first:
                first = False
                yield from s.energy_all()
        if batch:
            yield from s.put(('SUB', batch))
        yield from s.put(('BYE',))

    def executor(s, jid, alloc):
        j = s.jobs[jid]
        yield from s.energy_on(alloc)
        yield from s.energy_all()
        box = yield ('exec', jid, alloc)
        wt = float(j.get('walltime', -1))
        r = yield ('wait_for', box, wt)
        del s.running[jid]
        yield from s.energy_on(alloc)
        yield from s.energy_all()
        state = 'COMPLETED_SUCCESSFULLY' if r == 'ok' else 'COMPLETED_WALLTIME_REACHED'
        yield from s.put(('END', jid, state), alloc[0])

    def reqrep(s, reply):
        for ev in reply['events']:
            when = float(ev['timestamp'])
            if when > s.now:
                s.rr_sleeps += 1
                yield ('sleep', when - s.now)
            yield from s.put(('DEC', ev))
        when = float(reply['now'])
        if when > s.now:
            s.rr_sleeps += 1
            yield ('sleep', when - s.now)
        yield from s.put(('READY',))

    def server(s):
        writer = []
        ready = False; ends_sent = False; k = 0; finished_sub = False; ack = False

        def send():
            nonlocal k, ready
            s.msgs.append((s.now, list(writer)))
            reply = s.replies[k] if k < len(s.replies) else {'now': round(s.now, 6), 'events': []}
            k += 1
            writer.clear(); ready = False
            return ('create', ('rr', s.reqrep(reply), None))
        writer.append(('BEGINS',))
        yield send()
        while not ack:
            c = yield ('irecv',)
            m = yield ('wait', c)
            t = m[0]
            if t == 'SUB':
                for jid in m[1]: writer.append(('JOB_SUBMITTED', jid)); s.tlog.append(('SUBMITTED', jid, s.now))
            elif t == 'BYE':
                finished_sub = True; writer.append(('NOTIFY', 'no_more_static_job_to_submit'))
            elif t == 'END':
                writer.append(('JOB_COMPLETED', m[1], m[2])); s.tlog.append(('COMPLETED', m[1], s.now))
            elif t == 'READY':
                ready = True
                if ends_sent: ack = True
            elif t == 'DEC':
                ev = m[1]
                if ev['type'] == 'EXECUTE_JOB':
                    alloc = parse_alloc(ev['data']['alloc'])
                    jid = ev['data']['job_id']
                    yield ('create', ('job_' + jid, s.executor(jid, alloc), alloc[0]))
                elif ev['type'] == 'SET_RESOURCE_STATE':
                    ids = parse_alloc(ev['data']['resources']); st = int(ev['data']['state'])
                    yield from s.energy_all()       # energy_tracer.add_pstate_change -> total energy
                    for h in ids:
                        yield ('set_pstate', h, st)
                    writer.append(('RESOURCE_STATE_CHANGED', tuple(ids), str(st)))
                else:
                    raise ValueError(ev['type'])
            if ready and not ack and not s.sends:
                if writer:
                    yield send()
                elif finished_sub and not s.running_jobs() and not ends_sent:
                    writer.append(('SIMULATION_ENDS',)); ends_sent = True
                    yield send()

    def running_jobs(s):
        return len(s.running) > 0 or s.nb_executors_alive() > 0

    def nb_executors_alive(s):
        return sum(1 for a in s.all_actors if a.name.startswith('job_') and not a.dead)

    def run(s):
        s.all_actors = []
        orig_spawn = s.spawn

        def spawn(name, gen, host):
            a = orig_spawn(name, gen, host); s.all_actors.append(a); return a
        s.spawn = spawn
        s.spawn('submitter', s.submitter(), None)
        s.spawn('server', s.server(), None)
        while True:
            s.run_subrounds()
            done = s.step()
            if done is None:
                break
            for a in done:
                a.on_done(a)
        return s.msgs


def parse_alloc(st):
    out = []
    for p in st.split():
        if '-' in p:
            a, b = map(int, p.split('-')); out.extend(range(a, b + 1))
        else:
            out.append(int(p))
    return out


def canon_emu(evs):
    out = []
    for e in evs:
        if e[0] == 'RESOURCE_STATE_CHANGED':
            out.append((e[0], tuple(sorted(e[1])), e[2]))
        else:
            out.append(tuple(e))
    return out


def canon_real(m):
    out = []
    for e in m['events']:
        t = e['type']; d = e.get('data', {})
        if t == 'SIMULATION_BEGINS': out.append(('BEGINS',))
        elif t == 'JOB_SUBMITTED': out.append((t, d['job_id']))
        elif t == 'JOB_COMPLETED': out.append((t, d['job_id'], d['job_state']))
        elif t == 'RESOURCE_STATE_CHANGED': out.append((t, tuple(sorted(parse_alloc(d['resources']))), str(d['state'])))
        elif t == 'NOTIFY': out.append((t, d['type']))
        elif t == 'SIMULATION_ENDS': out.append((t,))
        else: out.append((t,))
    return out


def compare(msgs, transcript):
    L = [json.loads(l) for l in open(transcript)]
    real = [x['msg'] for x in L if x['from'] == 'batsim']
    n = min(len(real), len(msgs))
    first_bad = None; same = 0; same_now = 0; same_ev = 0; same_set = 0
    for i in range(n):
        now_e = float(f"{msgs[i][0]:.6f}"); now_r = float(real[i]['now'])
        ee = canon_emu(msgs[i][1]); er = canon_real(real[i])
        ok_now = now_e == now_r; ok_ev = ee == er
        same_now += ok_now; same_ev += ok_ev; same_set += sorted(ee) == sorted(er)
        if ok_now and ok_ev:
            same += 1
        elif first_bad is None:
            first_bad = i
    return dict(real=len(real), emu=len(msgs), identical=same, same_now=same_now, same_events=same_ev,
                same_event_sets=same_set, first_mismatch=first_bad)


def check_log(tlog, logpath):
    real = []
    for line in open(logpath):
        m = re.match(r'\[([0-9.]+)\] server/server Job (\S+) (SUBMITTED|has COMPLETED)', line)
        if m:
            real.append(('SUBMITTED' if m.group(3) == 'SUBMITTED' else 'COMPLETED', m.group(2), float(m.group(1))))
    ok = sum(1 for a, b in zip(tlog, real) if a == b)
    bad = [(a, b) for a, b in zip(tlog, real) if a != b][:3]
    return dict(log_events=len(real), emu_events=len(tlog), log_exact=ok, log_first_bad=repr(bad[:1]))


def main():
    plat, wl, tr, out = sys.argv[1:5]
    K = Kernel(plat, wl, tr, energy_yields='--noenergy-yields' not in sys.argv)
    msgs = K.run()
    with open(out, 'w') as f:
        for now, evs in msgs:
            f.write(json.dumps({'now_exact': repr(now), 'now': float(f"{now:.6f}"), 'events': evs}) + '\n')
    r = compare(msgs, tr)
    if '--log' in sys.argv:
        r.update(check_log(K.tlog, sys.argv[sys.argv.index('--log') + 1]))
    r['steps'] = K.nsteps; r['comms'] = K.ncomm; r['rr_sleeps'] = K.rr_sleeps
    print(json.dumps(r))


if __name__ == '__main__':
    main()
