"""Per-user metrics of a run: how each user was served, and how evenly.

A run folder knows each job's user from ``out_users.csv`` (job_id,user), which ``hdeeprm
simulate`` and ``replay`` write beside Batsim's outputs when the workload names users: the
SWF converter keeps field 12 (user id) as the job's extra field ``user``, and a Batsim JSON
job's own ``user`` field is kept as read (Batsim ignores unknown job fields).
``out_jobs.csv`` itself keeps Batsim's columns.

Per user: the jobs submitted, those that ran, and over the jobs that ran the mean waiting
time, mean slowdown and mean bounded slowdown, as in :mod:`hdeeprm.simulation.metrics`
(slowdown = turnaround / execution time; bounded slowdown = max(1, turnaround / max(execution,
10 s))).

Fairness: Jain's index (R. Jain, D.-M. Chiu, W. Hawe, "A Quantitative Measure of Fairness and
Discrimination for Resource Allocation in Shared Computer Systems", DEC-TR-301, 1984),
``J = (sum x)^2 / (n sum x^2)`` over the users' mean bounded slowdowns ``x``: 1 when every
user is served alike, down to 1/n when one user takes all the delay. Bounded slowdown, not
plain slowdown: a user whose jobs are very short gets slowdowns in the thousands from a few
minutes' wait, which would swamp the index; the 10 s bound is the usual remedy (Feitelson et
al.). Users none of whose jobs ran have no mean and are left out of the index.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdeeprm.analysis.tables import format_number
from hdeeprm.common.errors import FormatError
from hdeeprm.simulation.metrics import BOUNDED_SLOWDOWN_THRESHOLD
from hdeeprm.simulation.outputs import JOBS_FILE, USER_COLUMNS, USERS_FILE

#: Users shown in ``hdeeprm report``'s table (those with the most jobs) and named as the
#: worst served in ``hdeeprm compare``.
TOP_USERS = 10
WORST_USERS = 3


@dataclass(frozen=True)
class UserMetrics:
    user: str
    jobs: int  # submitted
    ran: int  # started (and ended: success, walltime or killed)
    mean_waiting_time: float  # s, over the jobs that ran (NaN if none)
    mean_slowdown: float
    mean_bounded_slowdown: float


@dataclass(frozen=True)
class UserReport:
    users: list[UserMetrics]  # most jobs first, then by user
    fairness: float  # Jain's index of the users' mean bounded slowdowns (NaN if no user ran a job)
    nb_users_served: int  # users in the index: at least one job that ran

    def worst_served(self, count: int = WORST_USERS) -> list[UserMetrics]:
        """The users with the highest mean bounded slowdown."""
        served = [u for u in self.users if u.ran]
        return sorted(served, key=lambda u: (-u.mean_bounded_slowdown, -u.jobs, u.user))[:count]


def jain_index(values) -> float:
    """Jain's fairness index of non-negative values: (sum x)^2 / (n sum x^2); NaN when empty,
    1 when all are 0."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    squares = float((x * x).sum())
    return float(x.sum()) ** 2 / (x.size * squares) if squares > 0 else 1.0


def read_users(path: str | Path) -> dict[str, str]:
    """out_users.csv: job id -> user."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != list(USER_COLUMNS):
            raise FormatError(str(path), "line 1", f"expected the columns {','.join(USER_COLUMNS)}")
        return {row[0]: row[1] for row in reader if len(row) >= 2}


def user_metrics(jobs_csv: str | Path, users: dict[str, str]) -> UserReport:
    """Per-user metrics of the jobs in an out_jobs.csv; jobs without a user are left out."""
    names, waiting, turnaround, execution, ran = [], [], [], [], []
    with open(jobs_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            user = users.get(row["job_id"])
            if user is None:
                continue
            names.append(user)
            started = row["final_state"] not in ("REJECTED", "") and row["starting_time"] != ""
            ran.append(started)
            waiting.append(float(row["waiting_time"]) if started else np.nan)
            turnaround.append(float(row["turnaround_time"]) if started else np.nan)
            execution.append(float(row["execution_time"]) if started else np.nan)
    labels, index = np.unique(np.array(names, dtype=object).astype(str), return_inverse=True)
    ran_mask = np.array(ran, dtype=bool)
    wait, around, run = (np.array(a, dtype=np.float64) for a in (waiting, turnaround, execution))
    with np.errstate(divide="ignore", invalid="ignore"):
        slowdown = around / run
    bounded = np.maximum(1.0, around / np.maximum(run, BOUNDED_SLOWDOWN_THRESHOLD))
    n = labels.size
    jobs = np.bincount(index, minlength=n)
    nb_ran = np.bincount(index[ran_mask], minlength=n)

    def mean(values):
        sums = np.bincount(index[ran_mask], weights=values[ran_mask], minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(nb_ran > 0, sums / np.maximum(nb_ran, 1), np.nan)

    mean_wait, mean_sd, mean_bsd = mean(wait), mean(slowdown), mean(bounded)
    users = [UserMetrics(str(labels[k]), int(jobs[k]), int(nb_ran[k]), float(mean_wait[k]), float(mean_sd[k]),
                         float(mean_bsd[k])) for k in range(n)]
    users.sort(key=lambda u: (-u.jobs, _user_key(u.user)))
    served = mean_bsd[nb_ran > 0]
    return UserReport(users, jain_index(served), int(served.size))


def _user_key(user: str):
    """Numeric user ids in numeric order, before other names."""
    try:
        return (0, float(user), user)
    except ValueError:
        return (1, 0.0, user)


def run_user_metrics(folder: str | Path) -> UserReport | None:
    """The per-user metrics of the run whose outputs are in ``folder``; None when the folder
    has no out_users.csv (its workload named no users) or no out_jobs.csv."""
    folder = Path(folder)
    users_csv, jobs_csv = folder / USERS_FILE, folder / JOBS_FILE
    if not users_csv.is_file() or not jobs_csv.is_file():
        return None
    users = read_users(users_csv)
    return user_metrics(jobs_csv, users) if users else None


def fairness_line(name: str, report: UserReport | None, width: int = 0) -> str:
    """One line for ``hdeeprm compare``: the run's name (padded to ``width``), the index and
    the worst-served users."""
    head = f"  {name:<{width}}"
    if report is None:
        return f"{head} no user information (no {USERS_FILE}: the workload names no users)"
    worst = ", ".join(f"{u.user} ({format_number(u.mean_bounded_slowdown, 4)}, {u.jobs} jobs)"
                      for u in report.worst_served())
    return (f"{head} Jain's index {report.fairness:.4f} over {report.nb_users_served} users; "
            f"worst served (mean bounded slowdown, jobs): {worst or '-'}")


def user_table_rows(report: UserReport, top: int = TOP_USERS) -> list[tuple]:
    """Rows (user, jobs, ran, mean waiting s, mean slowdown, mean bounded slowdown) of the
    ``top`` users with the most jobs."""
    return [(u.user, u.jobs, u.ran, u.mean_waiting_time, u.mean_slowdown, u.mean_bounded_slowdown)
            for u in report.users[:top]]
