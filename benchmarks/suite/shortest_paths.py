"""shortest_paths: Dijkstra's algorithm with heapq on an n x n grid graph with pseudo-random
edge weights, stored as a dict of adjacency dicts; the result summarizes the distances.

Exercises dicts keyed by tuples, heapq pushes/pops of tuples, comparisons and tuple unpacking.
Check: the distances recomputed by a different algorithm (queue-based Bellman-Ford, SPFA,
with a deque), which must agree exactly.
"""

import collections
import heapq

from suite import expect

CATEGORY = "strings"
SIZES = {"quick": 12, "full": 160}
HOT = ["make_graph", "dijkstra"]


def make_graph(n):
    graph = {}
    x = 99
    for r in range(n):
        for c in range(n):
            edges = {}
            for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < n and 0 <= cc < n:
                    x = (x * 1103515245 + 12345) & 2147483647
                    edges[(rr, cc)] = 1 + (x >> 10) % 20
            graph[(r, c)] = edges
    return graph


def dijkstra(graph, source):
    dist = {source: 0}
    heap = [(0, source)]
    done = set()
    while heap:
        d, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        for other, weight in graph[node].items():
            nd = d + weight
            if nd < dist.get(other, nd + 1):
                dist[other] = nd
                heapq.heappush(heap, (nd, other))
    return dist


def _summary(dist, n):
    return [len(dist), sum(dist.values()), max(dist.values()), dist[(n - 1, n - 1)]]


def run(n):
    return _summary(dijkstra(make_graph(n), (0, 0)), n)


def check(n, result):
    graph = make_graph(n)
    dist = {node: float("inf") for node in graph}
    dist[(0, 0)] = 0
    queue = collections.deque([(0, 0)])
    queued = {(0, 0)}
    while queue:
        node = queue.popleft()
        queued.discard(node)
        for other, weight in graph[node].items():
            if dist[node] + weight < dist[other]:
                dist[other] = dist[node] + weight
                if other not in queued:
                    queued.add(other)
                    queue.append(other)
    expect("shortest_paths(%d)" % n, result, _summary(dist, n))
