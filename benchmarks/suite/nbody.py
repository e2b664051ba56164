"""nbody: a gravitational n-body simulation (a star and four planets, symplectic Euler steps).

Exercises float arithmetic on list elements (BINARY_SUBSCR / STORE_SUBSCR of lists of floats),
nested loops over body pairs and math.sqrt. The system is this suite's own: planets on near
circular orbits at well separated radii, so it stays regular (not chaotic) over the run and
different evaluation orders agree to many digits.
Check: the same simulation written with Body objects and tuples (relative 1e-9 on the final
energy), and conservation of energy (relative 1e-2: symplectic Euler
bounds the error, it does not remove it).
"""

import math

from suite import expect

CATEGORY = "numeric"
SIZES = {"quick": 200, "full": 20_000}
HOT = ["kernel", "energy"]
NUMBA = ["kernel", "energy"]
NATIVE = True

# (mass, orbit radius, phase angle in radians); G = 1, the star has mass 1000.
PLANETS = ((1.0, 10.0, 0.0), (0.5, 16.0, 1.3), (2.0, 25.0, 2.9), (0.1, 40.0, 4.4))
STAR_MASS = 1000.0
DT = 0.01


def energy(m, x, y, z, vx, vy, vz):
    nb = len(m)
    e = 0.0
    for i in range(nb):
        e += 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i])
        for j in range(i + 1, nb):
            dx = x[i] - x[j]
            dy = y[i] - y[j]
            dz = z[i] - z[j]
            e -= m[i] * m[j] / math.sqrt(dx * dx + dy * dy + dz * dz)
    return e


def kernel(steps):
    nb = len(PLANETS) + 1
    m = [STAR_MASS] + [0.0] * (nb - 1)
    x = [0.0] * nb
    y = [0.0] * nb
    z = [0.0] * nb
    vx = [0.0] * nb
    vy = [0.0] * nb
    vz = [0.0] * nb
    for k in range(nb - 1):
        mass, radius, phase = PLANETS[k]
        speed = math.sqrt(STAR_MASS / radius)
        m[k + 1] = mass
        x[k + 1] = radius * math.cos(phase)
        y[k + 1] = radius * math.sin(phase)
        z[k + 1] = 0.01 * radius
        vx[k + 1] = -speed * math.sin(phase)
        vy[k + 1] = speed * math.cos(phase)
    # Move to the centre-of-mass frame: the star takes the planets' momentum.
    for k in range(1, nb):
        vx[0] -= m[k] * vx[k] / STAR_MASS
        vy[0] -= m[k] * vy[k] / STAR_MASS
    e0 = energy(m, x, y, z, vx, vy, vz)
    for _ in range(steps):
        for i in range(nb):
            for j in range(i + 1, nb):
                dx = x[i] - x[j]
                dy = y[i] - y[j]
                dz = z[i] - z[j]
                d2 = dx * dx + dy * dy + dz * dz
                mag = DT / (d2 * math.sqrt(d2))
                mi = m[i] * mag
                mj = m[j] * mag
                vx[i] -= dx * mj
                vy[i] -= dy * mj
                vz[i] -= dz * mj
                vx[j] += dx * mi
                vy[j] += dy * mi
                vz[j] += dz * mi
        for i in range(nb):
            x[i] += DT * vx[i]
            y[i] += DT * vy[i]
            z[i] += DT * vz[i]
    return (e0, energy(m, x, y, z, vx, vy, vz))


def run(n):
    return kernel(n)


class _Body:
    def __init__(self, mass, pos, vel):
        self.mass, self.pos, self.vel = mass, pos, vel


def _reference(steps):
    bodies = [_Body(STAR_MASS, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))]
    for mass, radius, phase in PLANETS:
        speed = math.sqrt(STAR_MASS / radius)
        bodies.append(_Body(mass, (radius * math.cos(phase), radius * math.sin(phase),
                                   0.01 * radius),
                            (-speed * math.sin(phase), speed * math.cos(phase), 0.0)))
    star = bodies[0]
    px = sum(b.mass * b.vel[0] for b in bodies[1:])
    py = sum(b.mass * b.vel[1] for b in bodies[1:])
    star.vel = (-px / STAR_MASS, -py / STAR_MASS, 0.0)

    def total_energy():
        kinetic = sum(0.5 * b.mass * sum(v * v for v in b.vel) for b in bodies)
        potential = sum(a.mass * b.mass / math.dist(a.pos, b.pos)
                        for i, a in enumerate(bodies) for b in bodies[i + 1:])
        return kinetic - potential

    e0 = total_energy()
    pairs = [(a, b) for i, a in enumerate(bodies) for b in bodies[i + 1:]]
    for _ in range(steps):
        for a, b in pairs:
            d = [p - q for p, q in zip(a.pos, b.pos)]
            d2 = sum(c * c for c in d)
            mag = DT / (d2 * math.sqrt(d2))
            a.vel = tuple(v - c * b.mass * mag for v, c in zip(a.vel, d))
            b.vel = tuple(v + c * a.mass * mag for v, c in zip(b.vel, d))
        for b in bodies:
            b.pos = tuple(p + DT * v for p, v in zip(b.pos, b.vel))
    return (e0, total_energy())


def check(n, result):
    want = _reference(n)
    expect("nbody(%d) energies" % n, result, want, rel=1e-9)
    expect("nbody(%d) energy drift" % n, result[1], result[0], rel=1e-2)
