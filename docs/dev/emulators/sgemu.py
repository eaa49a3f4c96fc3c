"""Emulator of Batsim 4.2.1 / SimGrid 3.32 (ptask_L07, zero-latency platform) step arithmetic
and message grouping, driving an FCFS scheduler identical to fcfs_sched.py.

Model (see REPORT.md):
  * actions in creation order: ptask (remains, rate) or sleep (maxdur)
  * one solve step: delta = min(ptask: remains/rate (0 if remains<=0); sleep: maxdur)
      now += delta
      ptask: remains -= rate*delta ; if remains < 1e-14: remains = 0 ; done if remains <= 0
      sleep: maxdur  -= delta      ; if maxdur  < 1e-9 : maxdur  = 0 ; done if maxdur  <= 0
  * all actions done in one step -> one Batsim message (events in action-creation order),
    if the scheduler is ready; NOTIFY(no_more_static_job_to_submit) is a separate message.
usage: sgemu.py platform.xml workload.json out.jsonl [--ghost]
"""
import sys, json, re
import numpy as np

PREC_REM = 1e-5 * 1e-9   # sg_maxmin_precision * sg_surf_precision
PREC_DUR = 1e-9          # sg_surf_precision

def parse_speed(s):
    s = s.split(',')[0].strip()
    m = re.match(r'([0-9.eE+-]+)\s*([a-zA-Z]*)', s)
    v = float(m.group(1)); u = m.group(2)
    mult = {'f': 1, '': 1, 'kf': 1e3, 'Mf': 1e6, 'Gf': 1e9, 'Tf': 1e12}[u]
    return v * mult

def load_platform(p):
    hosts = []
    for m in re.finditer(r'<host id="([^"]+)"[^>]*speed="([^"]+)"[^>]*?(?:pstate="(\d+)")?', open(p).read()):
        name = m.group(1)
        if name == 'master_host': continue
        speeds = [parse_speed(x) for x in m.group(2).split(',')]
        ps = int(m.group(3) or 0)
        hosts.append((name, speeds[ps]))
    hosts.sort(key=lambda h: h[0].encode())
    return [s for _, s in hosts]

class Act:
    __slots__ = ('kind', 'rem', 'rate', 'dur', 'owner', 'tag', 'alive')
    def __init__(s, kind, owner, tag, rem=1.0, rate=0.0, dur=-1.0):
        s.kind = kind; s.owner = owner; s.tag = tag; s.rem = rem; s.rate = rate; s.dur = dur; s.alive = True

class Emu:
    def __init__(s, plat, wl, ghost=False):
        s.speeds = load_platform(plat)
        W = json.load(open(wl))
        s.profiles = W['profiles']
        s.jobs = {}
        for j in W['jobs']:
            jid = f"w0!{j['id']}"
            s.jobs[jid] = j
        order = sorted(s.jobs, key=lambda k: (float(s.jobs[k]['subtime']), k))
        s.subq = order; s.subidx = 0
        s.now = 0.0
        s.acts = []
        s.ghost = ghost
        s.msgs = []
        # scheduler state
        s.nres = len(s.speeds); s.free = set(range(s.nres)); s.queue = []
        s.running = {}

    # ---------------- actions
    def new_ptask(s, owner, rate):
        a = Act('p', owner, 'ptask', rem=1.0, rate=rate); s.acts.append(a); return a
    def new_sleep(s, owner, tag, dur):
        a = Act('s', owner, tag, dur=dur); s.acts.append(a); return a

    def step(s):
        acts = [a for a in s.acts if a.alive]; s.acts = acts
        delta = -1.0
        for a in acts:
            if a.kind == 'p':
                if a.rate > 0:
                    v = a.rem / a.rate if a.rem > 0 else 0.0
                    if delta < 0 or v < delta: delta = v
            else:
                if a.dur >= 0 and (delta < 0 or a.dur < delta): delta = a.dur
        if delta < 0: return None
        s.now = s.now + delta
        done = []
        for a in acts:
            if a.kind == 'p':
                a.rem = a.rem - a.rate * delta
                if a.rem < PREC_REM: a.rem = 0.0
                if a.rem <= 0: done.append(a)
            else:
                a.dur = a.dur - delta
                if a.dur < PREC_DUR: a.dur = 0.0
                if a.dur <= 0: done.append(a)
        for a in done: a.alive = False
        return done

    # ---------------- submitter
    def submitter_run(s, events):
        """Run the submitter from its wake-up; append JOB_SUBMITTED events; returns True if finished."""
        cur = np.longdouble(s.now)
        batch = []
        if s.subidx < len(s.subq) and s.first_pending:
            batch.append(s.subq[s.subidx]); s.subidx += 1   # job that triggered the sleep is pushed
        s.first_pending = False
        while s.subidx < len(s.subq):
            jid = s.subq[s.subidx]
            st = np.longdouble(float(s.jobs[jid]['subtime']))
            if st > cur:
                if batch: events.append(('SUB', batch))
                d = float(st - cur)
                s.new_sleep('submitter', 'subsleep', d)
                s.first_pending = True
                return False
            batch.append(jid); s.subidx += 1
        if batch: events.append(('SUB', batch))
        return True

    # ---------------- scheduler (FCFS)
    def schedule(s, evs, now_print):
        starts = []
        for e in evs:
            if e[0] == 'SUB':
                for jid in e[1]:
                    if s.jobs[jid]['res'] > s.nres: continue
                    s.queue.append(jid)
            elif e[0] == 'END':
                s.free |= set(s.running.pop(e[1]))
        while s.queue and s.jobs[s.queue[0]]['res'] <= len(s.free):
            jid = s.queue.pop(0); alloc = sorted(s.free)[:s.jobs[jid]['res']]
            s.free -= set(alloc); s.running[jid] = alloc; starts.append((jid, alloc))
        return starts

    def start_job(s, jid, alloc):
        j = s.jobs[jid]; p = s.profiles[j['profile']]
        wt = float(j.get('walltime', -1))
        if p['type'] == 'parallel_homogeneous':
            c = float(p['cpu'])
            sp = min(s.speeds[i] for i in alloc)
            pt = s.new_ptask(jid, sp / c if c > 0 else 1.0)
            if c <= 0: pt.rem = 0.0
            to = s.new_sleep(jid, 'timeout', wt) if wt > 0 else None
            s.jstate[jid] = (pt, to)
        elif p['type'] == 'delay':
            d = float(p['delay'])
            if wt > 0 and not (d < wt):
                sl = s.new_sleep(jid, 'delaykill', wt)
            else:
                sl = s.new_sleep(jid, 'delay', d)
            s.jstate[jid] = (sl, None)
        else:
            raise ValueError(p['type'])

    def run(s):
        s.jstate = {}
        s.first_pending = False
        s.msgs.append((s.now, [('BEGINS',)]))
        s.nb_rr_sleeps = 0
        pending = []            # events received by the server, not yet sent
        sched_ready = True      # reply to SIMULATION_BEGINS was empty with now=0: no sleep
        rr = None               # (sleep action, starts) while the REQ-REP actor sleeps to reach reply.now
        s.ev_time = {}
        sub_done = s.submitter_run(pending)
        for ev in pending: s.ev_time[id(ev)] = s.now
        if sub_done and pending and pending[-1][0] == 'SUB':
            pending_after = [('NOTIFY',)]
        else:
            pending_after = []
        while True:
            # ---- cascade at the current clock: send while the scheduler is ready and something is pending
            while sched_ready and (pending or pending_after):
                if not pending:
                    pending, pending_after = pending_after, []
                msg = pending; pending = []
                s.msgs.append((s.now, msg))
                now_p = float(f"{s.now:.6f}")
                starts = s.schedule(msg, now_p)
                if now_p > s.now:
                    # REQ-REP actor: send_message_at_time(now_p) sleeps fl(now_p - clock) before the first put
                    s.nb_rr_sleeps += 1
                    rr = (s.new_sleep('rr', 'rr', now_p - s.now), starts)
                    sched_ready = False
                else:
                    for jid, alloc in starts:
                        s.start_job(jid, alloc)
            done = s.step()
            if done is None:
                break
            evs = []
            for a in done:
                if a.owner == 'submitter':
                    sub_done = s.submitter_run(evs)
                    if sub_done:
                        s.sub_finished_step = True
                    continue
                if a.owner == 'rr':
                    for jid, alloc in rr[1]:
                        s.start_job(jid, alloc)
                    rr = None
                    s.rr_done_now = True
                    continue
                jid = a.owner
                if jid not in s.jstate: continue
                x, to = s.jstate[jid]
                if a.tag == 'ptask':
                    if to is not None: to.alive = False
                    evs.append(('END', jid, 'COMPLETED_SUCCESSFULLY'))
                elif a.tag == 'timeout':
                    if not s.ghost: x.alive = False
                    else: x.owner = '__ghost__'
                    evs.append(('END', jid, 'COMPLETED_WALLTIME_REACHED'))
                elif a.tag == 'delay':
                    evs.append(('END', jid, 'COMPLETED_SUCCESSFULLY'))
                elif a.tag == 'delaykill':
                    evs.append(('END', jid, 'COMPLETED_WALLTIME_REACHED'))
                del s.jstate[jid]
            if getattr(s, 'sub_finished_step', False):
                s.sub_finished_step = False
                # BYE is put after the last JOB_SUBMITTED comm completes: same message if events follow it
                if evs and evs[-1][0] == 'SUB' and sched_ready and not pending:
                    pending_after = [('NOTIFY',)]
                else:
                    evs.append(('NOTIFY',))
            if getattr(s, 'rr_done_now', False):
                s.rr_done_now = False
                sched_ready = True
            if s.energy:
                # with --energy, job actors yield (energy-update simcalls) before their put: submitter first
                evs = [e for e in evs if e[0] == 'SUB'] + [e for e in evs if e[0] != 'SUB']
            for ev in evs:
                s.ev_time[id(ev)] = s.now
            pending.extend(evs)
        s.msgs.append((s.now, [('ENDS',)]))

def main():
    plat, wl, out = sys.argv[1:4]
    e = Emu(plat, wl, ghost='--ghost' in sys.argv)
    e.energy = '--no-energy' not in sys.argv
    e.notified = False
    e.run()
    with open(out, 'w') as f:
        for now, evs in e.msgs:
            f.write(json.dumps({'now_exact': repr(now), 'now': float(f"{now:.6f}"), 'events': evs,
                                'ev_times': [repr(e.ev_time.get(id(ev), now)) for ev in evs]}) + '\n')
    print(len(e.msgs), 'messages')

if __name__ == '__main__':
    main()
