"""SimGrid's actor rounds at one date (hdeeprm.backends.batsim.actor_rounds), by hand."""

from hdeeprm.backends.batsim.actor_rounds import SWITCH, rounds


def test_an_actor_whose_hosts_are_up_to_date_acts_in_the_first_round():
    assert rounds([("reads", [0, 1, 0, 1])], {0, 1}) == [(0, 0)]


def test_each_stale_host_costs_a_round_and_what_one_actor_updates_serves_the_next():
    # Actor A reads 0 then 1, actor B reads 1 then 2; nothing is up to date.
    # Round 0: A simcalls on 0, B on 1. Round 1: A finds 1 updated and finishes; B simcalls on 2.
    # Round 2: B finishes.
    assert rounds([("reads", [0, 1]), ("reads", [1, 2])], set()) == [(1, 0), (2, 0)]


def test_a_switch_actor_takes_one_simcall_and_updates_its_host():
    # The job reads host 3 (stale) then 0 (fresh); the switch sets host 3's p-state. Both
    # simcall in round 0 and act in round 1, in wake order.
    assert rounds([("reads", [3, 0]), (SWITCH, [3])], {0}) == [(1, 0), (1, 1)]
    # A job that must read two stale hosts acts after the switch.
    assert rounds([("reads", [1, 2]), (SWITCH, [3])], set()) == [(2, 0), (1, 0)]


def test_the_updated_set_given_is_not_modified():
    fresh = {0}
    rounds([("reads", [1]), (SWITCH, [2])], fresh)
    assert fresh == {0}


def test_play_spawned_actors_start_the_next_round_and_share_updates():
    from hdeeprm.backends.batsim.actor_rounds import play

    # The server spawns a job actor, reads hosts 0 and 1 (both stale: two rounds), then spawns a
    # switch actor. The job actor starts in round 1, finds host 0 updated by the server's round
    # 0 read, simcalls on host 2 and makes its activity in round 2. The switch actor, spawned in
    # round 2, simcalls in round 3 and makes its activity in round 4.
    server = [("spawn", 1), ("read", 0), ("read", 1), ("spawn", 2)]
    job = [("read", 0), ("read", 2), ("point",)]
    switch = [("simcall", [3]), ("point",)]
    assert play([server, job, switch], [0, None, None], set()) == [(-1, -1), (2, 0), (4, 0)]
    # Everything up to date: the job makes its activity in round 1, the switch in round 2.
    assert play([server, job, switch], [0, None, None], {0, 1, 2}) == [(-1, -1), (1, 0), (2, 0)]
