"""word_count: word frequencies of a generated text (mixed case and punctuation): normalize each
word, count with a dict, and report the ten most frequent.

Exercises str.split/strip/lower, dict get/store with string keys, and sorting with a key.
Check: collections.Counter over the same normalized words, most_common order made canonical.
"""

import collections

from suite import expect

CATEGORY = "strings"
SIZES = {"quick": 2_000, "full": 150_000}
HOT = ["count_words"]
SYLLABLES = ["ka", "lo", "mi", "ne", "tu", "ra", "si", "vo", "de", "pu", "ga", "xe"]
PUNCTUATION = ["", "", "", ",", ".", ";", "!", "?"]


def make_text(n):
    words = []
    x = 7
    for i in range(n):
        x = (x * 1103515245 + 12345) & 2147483647
        k = (x >> 8) % 97 if x % 3 else (x >> 8) % 9  # a few very frequent words
        word = SYLLABLES[k % 12] + SYLLABLES[k // 12 % 12] + ("n" if k % 5 == 0 else "")
        if x & 64:
            word = word.capitalize()
        words.append(word + PUNCTUATION[(x >> 4) % 8])
    return " ".join(words)


def count_words(text):
    counts = {}
    for raw in text.split():
        word = raw.strip(",.;!?").lower()
        if word:
            counts[word] = counts.get(word, 0) + 1
    return counts


def run(n):
    counts = count_words(make_text(n))
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    return [len(counts), sum(counts.values()), top]


def check(n, result):
    counter = collections.Counter(w.strip(",.;!?").lower() for w in make_text(n).split())
    counter.pop("", None)
    top = sorted(counter.most_common(), key=lambda item: (-item[1], item[0]))[:10]
    expect("word_count(%d)" % n, result, [len(counter), sum(counter.values()), top])
