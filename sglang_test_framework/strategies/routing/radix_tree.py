"""A character-level radix (compressed prefix) tree of routed text, one per worker.

It approximates what a worker's prefix cache holds: every text routed to the worker is inserted, and
least-recently-used leaves are evicted once the tree holds more than its character budget. It never
learns about the worker's own evictions, hence "approximate" (the same approximation sglang-router
makes). Access times are integer ticks supplied by the caller, which keeps the tree deterministic.
"""

from __future__ import annotations

import heapq

__all__ = ["ApproxRadixTree"]


class _Node:
    """One edge of the tree: ``edge`` is the text from the parent to this node."""

    __slots__ = ("children", "edge", "last_access", "parent")

    def __init__(self, edge: str, parent: _Node | None, last_access: int) -> None:
        self.edge = edge
        self.parent = parent
        self.last_access = last_access
        self.children: dict[str, _Node] = {}


def _common_prefix_len(edge: str, text: str, start: int) -> int:
    """Length of the common prefix of ``edge`` and ``text[start:]``.

    Binary search over slice comparisons: O(n log n) character compares done in C, much faster in
    Python than a per-character loop for the long prompts routing deals with.
    """
    low, high = 0, min(len(edge), len(text) - start)
    while low < high:
        mid = (low + high + 1) // 2
        if edge[:mid] == text[start : start + mid]:
            low = mid
        else:
            high = mid - 1
    return low


class ApproxRadixTree:
    """Routed text of one worker, with LRU eviction to a character budget.

    Args:
        max_chars: Character budget; :meth:`insert` evicts least-recently-used leaves when the tree
            grows past it, down to ``max_chars × (1 − evict_slack)``.
        evict_slack: Fraction of the budget freed per eviction, so eviction (O(tree size)) runs once per
            ``slack × budget`` inserted characters instead of on every insert.

    Raises:
        ValueError: ``max_chars`` < 1 or ``evict_slack`` outside [0, 1).
    """

    def __init__(self, max_chars: int, evict_slack: float = 0.1) -> None:
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        if not 0.0 <= evict_slack < 1.0:
            raise ValueError(f"evict_slack must be in [0, 1), got {evict_slack}")
        self.max_chars = max_chars
        self.evict_slack = evict_slack
        self._root = _Node("", None, 0)
        self.size_chars = 0
        self.evicted_chars = 0

    def match(self, text: str) -> int:
        """Number of leading characters of ``text`` present in the tree (read-only)."""
        node, pos, length = self._root, 0, len(text)
        while pos < length:
            child = node.children.get(text[pos])
            if child is None:
                break
            edge = child.edge
            if not text.startswith(edge, pos):
                return pos + _common_prefix_len(edge, text, pos)
            pos += len(edge)
            node = child
        return pos

    def insert(self, text: str, tick: int) -> None:
        """Add ``text``, mark its path as used at ``tick`` and evict if over budget."""
        node, pos, length = self._root, 0, len(text)
        node.last_access = tick
        while pos < length:
            first = text[pos]
            child = node.children.get(first)
            if child is None:
                node.children[first] = _Node(text[pos:], node, tick)
                self.size_chars += length - pos
                break
            edge = child.edge
            shared = len(edge) if text.startswith(edge, pos) else _common_prefix_len(edge, text, pos)
            if shared < len(edge):
                child = self._split(node, child, shared)
            child.last_access = tick
            node, pos = child, pos + shared
        if self.size_chars > self.max_chars:
            self.evict(int(self.max_chars * (1.0 - self.evict_slack)))

    def evict(self, target_chars: int) -> None:
        """Remove least-recently-used leaves until the tree holds at most ``target_chars``."""
        if self.size_chars <= target_chars:
            return
        heap: list[tuple[int, int, _Node]] = []
        order = 0
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.children:
                stack.extend(node.children.values())
            elif node is not self._root:
                heap.append((node.last_access, order, node))
                order += 1
        heapq.heapify(heap)
        while heap and self.size_chars > target_chars:
            _, _, leaf = heapq.heappop(heap)
            parent = leaf.parent
            assert parent is not None
            del parent.children[leaf.edge[0]]
            self.size_chars -= len(leaf.edge)
            self.evicted_chars += len(leaf.edge)
            if not parent.children and parent is not self._root:
                heapq.heappush(heap, (parent.last_access, order, parent))
                order += 1

    @staticmethod
    def _split(parent: _Node, child: _Node, at: int) -> _Node:
        """Split ``child``'s edge after ``at`` characters; return the new middle node."""
        middle = _Node(child.edge[:at], parent, child.last_access)
        parent.children[middle.edge[0]] = middle
        child.edge = child.edge[at:]
        child.parent = middle
        middle.children[child.edge[0]] = child
        return middle
