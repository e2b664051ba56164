"""stack_vm: a small stack-machine interpreter with one class per instruction, running a
program (a loop with arithmetic, a comparison and a conditional jump) assembled from text.

Exercises polymorphic execute() calls per instruction, list push/pop on the VM's stack,
attribute loads of operands, and a dict of instruction classes used by the assembler.
Check: the program's result in closed form (i*i % 7 has period 7) and the exact number of
instructions executed (the loop body's length times n, plus the prologue and the exit test).
"""

from suite import expect

CATEGORY = "objects"
SIZES = {"quick": 300, "full": 40_000}
HOT = ["Push.execute", "Load.execute", "Store.execute", "BinaryOp.execute",
       "JumpIfFalse.execute", "Jump.execute", "VM.run"]

# s = 0; i = 0; while i < n: s = s + (i * i) % 7 + (i & 3); i = i + 1
PROGRAM = """
    push 0
    store s
    push 0
    store i
loop:
    load i
    load n
    lt
    jump_if_false end
    load s
    load i
    load i
    mul
    push 7
    mod
    add
    load i
    push 3
    and
    add
    store s
    load i
    push 1
    add
    store i
    jump loop
end:
    load s
    halt
"""


class Instr:
    def execute(self, vm):
        raise NotImplementedError


class Push(Instr):
    def __init__(self, value):
        self.value = int(value)

    def execute(self, vm):
        vm.stack.append(self.value)
        return vm.pc + 1


class Load(Instr):
    def __init__(self, name):
        self.name = name

    def execute(self, vm):
        vm.stack.append(vm.variables[self.name])
        return vm.pc + 1


class Store(Instr):
    def __init__(self, name):
        self.name = name

    def execute(self, vm):
        vm.variables[self.name] = vm.stack.pop()
        return vm.pc + 1


class BinaryOp(Instr):
    def __init__(self, op):
        self.op = op

    def execute(self, vm):
        right = vm.stack.pop()
        left = vm.stack.pop()
        op = self.op
        if op == "add":
            value = left + right
        elif op == "mul":
            value = left * right
        elif op == "mod":
            value = left % right
        elif op == "and":
            value = left & right
        elif op == "lt":
            value = 1 if left < right else 0
        else:
            raise ValueError(op)
        vm.stack.append(value)
        return vm.pc + 1


class JumpIfFalse(Instr):
    def __init__(self, label):
        self.label = label
        self.target = -1

    def execute(self, vm):
        if vm.stack.pop():
            return vm.pc + 1
        return self.target


class Jump(JumpIfFalse):
    def execute(self, vm):
        return self.target


class Halt(Instr):
    def execute(self, vm):
        return -1


OPCODES = {"push": Push, "load": Load, "store": Store, "jump_if_false": JumpIfFalse,
           "jump": Jump, "halt": Halt}
for _op in ("add", "mul", "mod", "and", "lt"):
    OPCODES[_op] = (lambda op: lambda: BinaryOp(op))(_op)


def assemble(text):
    code, labels = [], {}
    for line in text.strip().splitlines():
        words = line.split()
        if words[0].endswith(":"):
            labels[words[0][:-1]] = len(code)
        else:
            code.append(OPCODES[words[0]](*words[1:]))
    for instr in code:
        if isinstance(instr, JumpIfFalse):
            instr.target = labels[instr.label]
    return code


class VM:
    def __init__(self, code, **variables):
        self.code = code
        self.variables = dict(variables)
        self.stack = []
        self.pc = 0
        self.executed = 0

    def run(self):
        code = self.code
        while self.pc >= 0:
            self.pc = code[self.pc].execute(self)
            self.executed += 1
        return self.stack.pop()


def run(n):
    vm = VM(assemble(PROGRAM), n=n)
    return (vm.run(), vm.executed)


def check(n, result):
    squares_mod_7 = [i * i % 7 for i in range(7)]
    low_bits = [0, 1, 2, 3]
    s = (n // 7) * sum(squares_mod_7) + sum(squares_mod_7[:n % 7])
    s += (n // 4) * sum(low_bits) + sum(low_bits[:n % 4])
    prologue, test, body, epilogue = 4, 4, 17, 2  # instructions, counted in PROGRAM above
    expect("stack_vm(%d)" % n, result, (s, prologue + n * (test + body) + test + epilogue))
