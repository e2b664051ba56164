"""scheduler: a cooperative task scheduler with classes (in the spirit of richards, written for
this suite): a generator task emits packets in bursts and then holds itself, two transformer
tasks rewrite packets, a sink task checksums them, and an idle task releases the generator.

Exercises virtual method calls (runnable()/step() overridden per task class), attribute-heavy
instance state, a linked-list packet queue and a priority scan of the task list.
Check: the sink's checksum and count in closed form per packet, each transformer's share, and
the exact number of task switches and idle steps the schedule implies (3 per packet plus one
idle step per completed burst that is followed by another packet).
"""

from suite import expect

CATEGORY = "objects"
SIZES = {"quick": 300, "full": 90_000}
HOT = ["Task.enqueue", "Task.dequeue", "Task.runnable", "Generator.runnable", "Generator.step",
       "Transformer.step", "Sink.step", "Idle.runnable", "Idle.step", "Scheduler.run"]
BURST = 4
TRANSFORMS = ((7, 3, 1009), (13, 5, 1013))  # (mul, add, mod) per transformer


class Packet:
    def __init__(self, seq, data):
        self.seq = seq
        self.data = data
        self.link = None


class Task:
    def __init__(self, scheduler, priority):
        self.scheduler = scheduler
        self.priority = priority
        self.head = None
        self.tail = None
        self.held = False
        self.steps = 0

    def enqueue(self, packet):
        packet.link = None
        if self.tail is None:
            self.head = packet
        else:
            self.tail.link = packet
        self.tail = packet

    def dequeue(self):
        packet = self.head
        self.head = packet.link
        if self.head is None:
            self.tail = None
        return packet

    def runnable(self):
        return not self.held and self.head is not None


class Generator(Task):
    def __init__(self, scheduler, priority, count, targets):
        super().__init__(scheduler, priority)
        self.count = count
        self.targets = targets
        self.next_seq = 0
        self.burst = 0

    def runnable(self):
        return not self.held and self.next_seq < self.count

    def step(self):
        seq = self.next_seq
        self.next_seq = seq + 1
        self.targets[seq % len(self.targets)].enqueue(Packet(seq, (seq * 31 + 7) % 1000))
        self.burst += 1
        if self.burst == BURST:
            self.burst = 0
            self.held = True


class Transformer(Task):
    def __init__(self, scheduler, priority, sink, mul, add, mod):
        super().__init__(scheduler, priority)
        self.sink = sink
        self.mul = mul
        self.add = add
        self.mod = mod

    def step(self):
        packet = self.dequeue()
        packet.data = (packet.data * self.mul + self.add) % self.mod
        self.sink.enqueue(packet)


class Sink(Task):
    def __init__(self, scheduler, priority):
        super().__init__(scheduler, priority)
        self.checksum = 0
        self.received = 0

    def step(self):
        packet = self.dequeue()
        self.checksum += packet.data * (packet.seq % 5 + 1)
        self.received += 1


class Idle(Task):
    def __init__(self, scheduler, priority, generator):
        super().__init__(scheduler, priority)
        self.generator = generator

    def runnable(self):
        return True

    def step(self):
        self.generator.held = False


class Scheduler:
    def __init__(self):
        self.tasks = []
        self.switches = 0

    def add(self, task):
        self.tasks.append(task)
        self.tasks.sort(key=lambda t: -t.priority)
        return task

    def run(self, sink, count):
        tasks = self.tasks
        while sink.received < count:
            for task in tasks:
                if task.runnable():
                    task.step()
                    task.steps += 1
                    self.switches += 1
                    break


def run(n):
    scheduler = Scheduler()
    sink = scheduler.add(Sink(scheduler, 4))
    transformers = [scheduler.add(Transformer(scheduler, 3 - k, sink, *TRANSFORMS[k]))
                    for k in range(len(TRANSFORMS))]
    generator = scheduler.add(Generator(scheduler, 1, n, transformers))
    idle = scheduler.add(Idle(scheduler, 0, generator))
    scheduler.run(sink, n)
    return (sink.checksum, sink.received, [t.steps for t in transformers], generator.steps,
            idle.steps, scheduler.switches)


def check(n, result):
    checksum = 0
    for seq in range(n):
        mul, add, mod = TRANSFORMS[seq % 2]
        checksum += ((seq * 31 + 7) % 1000 * mul + add) % mod * (seq % 5 + 1)
    idle_steps = (n - 1) // BURST if n else 0
    want = (checksum, n, [(n + 1) // 2, n // 2], n, idle_steps, 3 * n + idle_steps)
    expect("scheduler(%d)" % n, result, want)
