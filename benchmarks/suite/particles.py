"""particles: a particle system in a box with __slots__ objects: gravity, drag, and bounces
off the walls, stepped n times.

Exercises attribute loads and stores on __slots__ instances (LOAD_ATTR_SLOT/STORE_ATTR_SLOT),
float arithmetic on attributes, and branches on comparisons.
Check: the same simulation on parallel lists of floats (the same float operations in the same
order, so the positions agree exactly), and the bounce count.
"""

from suite import expect

CATEGORY = "objects"
SIZES = {"quick": 20, "full": 15_000}
HOT = ["Particle.advance", "World.step"]
COUNT = 60
GRAVITY = -9.81
DRAG = 0.999
DT = 0.005
SIZE = 10.0


class Particle:
    __slots__ = ("x", "y", "vx", "vy", "bounces")

    def __init__(self, k):
        self.x = (k * 37 % 100) / 10.0
        self.y = (k * 53 % 100) / 10.0
        self.vx = (k % 7 - 3) * 1.5
        self.vy = (k % 5 - 2) * 2.0
        self.bounces = 0

    def advance(self, dt):
        self.vy += GRAVITY * dt
        self.vx *= DRAG
        self.vy *= DRAG
        self.x += self.vx * dt
        self.y += self.vy * dt
        if self.x < 0.0:
            self.x = -self.x
            self.vx = -self.vx
            self.bounces += 1
        elif self.x > SIZE:
            self.x = 2.0 * SIZE - self.x
            self.vx = -self.vx
            self.bounces += 1
        if self.y < 0.0:
            self.y = -self.y
            self.vy = -self.vy
            self.bounces += 1
        elif self.y > SIZE:
            self.y = 2.0 * SIZE - self.y
            self.vy = -self.vy
            self.bounces += 1


class World:
    def __init__(self, count):
        self.particles = [Particle(k) for k in range(count)]

    def step(self, dt):
        for particle in self.particles:
            particle.advance(dt)


def run(n):
    world = World(COUNT)
    for _ in range(n):
        world.step(DT)
    xs = 0.0
    ys = 0.0
    bounces = 0
    for particle in world.particles:
        xs += particle.x
        ys += particle.y
        bounces += particle.bounces
    return (xs, ys, bounces)


def check(n, result):
    x = [(k * 37 % 100) / 10.0 for k in range(COUNT)]
    y = [(k * 53 % 100) / 10.0 for k in range(COUNT)]
    vx = [(k % 7 - 3) * 1.5 for k in range(COUNT)]
    vy = [(k % 5 - 2) * 2.0 for k in range(COUNT)]
    bounces = 0
    for _ in range(n):
        for k in range(COUNT):
            vy[k] = (vy[k] + GRAVITY * DT) * DRAG
            vx[k] = vx[k] * DRAG
            x[k] = x[k] + vx[k] * DT
            y[k] = y[k] + vy[k] * DT
            for pos, vel in ((x, vx), (y, vy)):
                if pos[k] < 0.0 or pos[k] > SIZE:
                    pos[k] = -pos[k] if pos[k] < 0.0 else 2.0 * SIZE - pos[k]
                    vel[k] = -vel[k]
                    bounces += 1
    xs = ys = 0.0
    for k in range(COUNT):
        xs += x[k]
        ys += y[k]
    expect("particles(%d)" % n, result, (xs, ys, bounces))
