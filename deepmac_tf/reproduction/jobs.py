"""Runs of an experiment at the same time (``reproduce.py --jobs N``).

The plan of an experiment (variant x seed) is run in plan order, up to
``jobs`` runs at once, each in its own child process. A stage-wise or
two-stage variant (``Variant.detector_from`` / ``pseudo_labels_from``)
restores or reads the finished run of another variant of the same seed:
it starts only once that run is done (when that variant is in the plan;
otherwise the runner reads its finished run or says it is missing). After a
failure nothing new starts: the runs in progress finish, the failed one and
the ones not started stay resumable (``--resume``).

Pure Python (no TensorFlow): the script imports it before parsing flags.
"""

import dataclasses
import os
import re
import subprocess
import time

# A child's training log, in its run folder (beside runner.RUN_FILE).
LOG_FILE = 'log.txt'


@dataclasses.dataclass(frozen=True)
class Run:
  """One run of the plan.

  Attributes:
    index: 1-based position in the plan (the ``[run i/n]`` number).
    name: the variant's name.
    seed: the seed.
    needs: names of variants whose run of the same seed must finish first.
  """
  index: int
  name: str
  seed: int
  needs: tuple = ()


def plan_runs(plan):
  """``Run``s of ``[(variant, seed), ...]`` (plan order), with the
  dependencies that are themselves in the plan."""
  names = {variant.name for variant, _ in plan}
  runs = []
  for index, (variant, seed) in enumerate(plan, start=1):
    needs = tuple(n for n in (variant.detector_from,
                              variant.pseudo_labels_from) if n and n in names)
    runs.append(Run(index, variant.name, int(seed), needs))
  return runs


class Schedule:
  """Which run starts next, in which job slot (1..jobs).

  ``take()`` hands out a pending run whose dependencies are done while fewer
  than ``jobs`` runs are in progress and nothing has failed;
  ``finish(run, ok)`` frees its slot. Without ``cost_of`` the runs start in
  plan order. With it (``cost_of(name)``: the expected seconds of a run of
  that variant, or None while none has finished), the longest expected run
  starts first, a variant with no finished run counting as the longest
  (plan order among equals): the long runs then do not end up alone at the
  end while the other slots idle (a 3-seed ResNet-4 / HG-20 plan on 2 jobs:
  the makespan of plan order is 3 HG-20 runs, of this about 2 HG-20 + 1
  ResNet-4).
  """

  def __init__(self, runs, jobs, cost_of=None):
    if jobs < 1:
      raise ValueError(f'jobs must be >= 1, got {jobs}')
    self.jobs = jobs
    self.cost_of = cost_of
    self.pending = list(runs)
    self.running = {}  # Run -> slot
    self.done = []
    self.failed = []

  def _ready(self, run):
    finished = {(r.name, r.seed) for r in self.done}
    return all((name, run.seed) in finished for name in run.needs)

  def take(self):
    """(run, slot) to start now, or None (all slots busy, nothing ready,
    or a run failed)."""
    if self.failed or len(self.running) >= self.jobs:
      return None
    ready = [run for run in self.pending if self._ready(run)]
    if not ready:
      return None
    run = ready[0]
    if self.cost_of is not None:
      run = min(ready, key=self._longest_first)
    self.pending.remove(run)
    slot = min(set(range(1, self.jobs + 1)) - set(self.running.values()))
    self.running[run] = slot
    return run, slot

  def _longest_first(self, run):
    cost = self.cost_of(run.name)
    return (0, 0.0, run.index) if cost is None else (1, -cost, run.index)

  def finish(self, run, ok=True):
    del self.running[run]
    (self.done if ok else self.failed).append(run)

  def over(self):
    """Nothing runs and nothing more can start."""
    return not self.running and (self.failed or not self.pending)


def makespan_seconds(costs, jobs):
  """Wall seconds for runs of ``costs`` (each its own wall seconds when
  ``jobs`` share the machine) spread over ``jobs`` slots: the total shared
  out, but never less than the longest single run."""
  costs = [max(float(c), 0.0) for c in costs]
  if not costs:
    return 0.0
  return max(sum(costs) / max(int(jobs), 1), max(costs))


class Child:
  """A child process whose output is appended to ``folder/LOG_FILE``.

  Attributes:
    folder: the run folder.
    settings: what the caller needs back when it ends (a run's settings).
    log_path: its log.
    start: ``time.time()`` at its start; seconds: its wall time once ended.
    proc: the ``subprocess.Popen``.
  """

  def __init__(self, command, folder, settings=None):
    self.folder, self.settings = folder, settings
    os.makedirs(folder, exist_ok=True)
    self.log_path = os.path.join(folder, LOG_FILE)
    # Appended: a resumed run keeps the log of its earlier part.
    self.log = open(self.log_path, 'a', encoding='utf-8')  # pylint: disable=consider-using-with
    self.log.write(f'# {time.strftime("%Y-%m-%d %H:%M:%S")}: '
                   f'{subprocess.list2cmdline(command)}\n')
    self.log.flush()
    self.start, self.seconds = time.time(), None
    # Its own session: a Ctrl-C in the terminal reaches the parent only,
    # which stops each child with one SIGTERM (a second signal could cut
    # the checkpoint save of its interrupt path).
    self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
        command, stdin=subprocess.DEVNULL, stdout=self.log,
        stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))

  def ended(self):
    """Its exit status once it has ended (closing its log), else None."""
    code = self.proc.poll()
    if code is not None and self.seconds is None:
      self.seconds = time.time() - self.start
      self.log.close()
    return code

  def last_error_line(self):
    with open(self.log_path, encoding='utf-8', errors='replace') as f:
      return last_error_line(f.read())


def wait_any(children, poll_seconds=0.5):
  """(key, child, exit status) of the first of ``children`` ({key: Child})
  to end; removes it from ``children``."""
  if not children:
    raise RuntimeError('--jobs: runs wait on runs that cannot start.')
  while True:
    for key, child in children.items():
      code = child.ended()
      if code is not None:
        del children[key]
        return key, child, code
    time.sleep(poll_seconds)


def stop_all(children, grace_seconds=300):
  """One SIGTERM to each child (a training run saves its step), then waits
  for them (SIGKILL after ``grace_seconds``, or at a second interrupt).

  Returns:
    [(key, child, exit status)] in ``children`` order.
  """
  for child in children.values():
    if child.proc.poll() is None:
      child.proc.terminate()
  deadline = time.time() + grace_seconds
  stopped = []
  try:
    for key, child in children.items():
      try:
        child.proc.wait(timeout=max(deadline - time.time(), 1))
      except subprocess.TimeoutExpired:
        child.proc.kill()
        child.proc.wait()
      stopped.append((key, child, child.ended()))
  finally:
    for child in children.values():
      if child.proc.poll() is None:
        child.proc.kill()
  return stopped


_EXCEPTION_LINE = re.compile(r'^[\w.]*(Error|Exception|Interrupted|Exit)\b')


def last_error_line(text):
  """The line of a child's log that says why it failed: the last
  ``ERROR:`` line, else the last exception line of a traceback, else the
  last non-empty line."""
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  for pattern in (lambda l: l.startswith('ERROR'), _EXCEPTION_LINE.match):
    for line in reversed(lines):
      if pattern(line):
        return line
  return lines[-1] if lines else '(the log is empty)'
