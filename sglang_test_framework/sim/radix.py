"""Token-level radix prefix cache with reference counts and LRU eviction of unreferenced leaves
(SGLang's RadixCache with page_size 1, reduced to what the simulator needs: sizes, not tensors)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

__all__ = ["RadixCache", "RadixNode"]


class RadixNode:
    """One edge of the tree: ``key`` tokens below ``parent``."""

    __slots__ = ("children", "key", "last_access", "lock_ref", "parent")

    def __init__(self, key: list[int], parent: RadixNode | None) -> None:
        self.key = key
        self.parent = parent
        self.children: dict[int, RadixNode] = {}
        self.lock_ref = 0
        self.last_access = 0


class RadixCache:
    """Prefix cache over token ids. ``total_size`` tokens are held; ``evictable_size`` of them belong to
    no running request and can be evicted (LRU leaves first)."""

    def __init__(self, disabled: bool = False) -> None:
        self.disabled = disabled
        self.root = RadixNode([], None)
        self.root.lock_ref = 1
        self.total_size = 0
        self.evictable_size = 0
        self._clock = itertools.count(1)

    def reset(self) -> None:
        """Drop everything (``/flush_cache``)."""
        self.root = RadixNode([], None)
        self.root.lock_ref = 1
        self.total_size = 0
        self.evictable_size = 0

    def match_prefix(self, tokens: Sequence[int]) -> tuple[int, RadixNode]:
        """Length of the longest cached prefix of ``tokens`` and the node where it ends (splitting an
        edge if the match ends inside it). Touches the path for LRU."""
        if self.disabled:
            return 0, self.root
        node, matched, now = self.root, 0, next(self._clock)
        n = len(tokens)
        while matched < n:
            child = node.children.get(tokens[matched])
            if child is None:
                break
            key = child.key
            k = len(key)
            if tokens[matched : matched + k] == key:
                matched += k
                node = child
                node.last_access = now
                continue
            common = 1
            limit = min(k, n - matched)
            while common < limit and key[common] == tokens[matched + common]:
                common += 1
            node = self._split(child, common)
            node.last_access = now
            matched += common
            break
        return matched, node

    def _split(self, child: RadixNode, at: int) -> RadixNode:
        parent = child.parent
        assert parent is not None
        mid = RadixNode(child.key[:at], parent)
        mid.lock_ref = child.lock_ref
        mid.last_access = child.last_access
        parent.children[mid.key[0]] = mid
        child.key = child.key[at:]
        child.parent = mid
        mid.children[child.key[0]] = child
        return mid

    def insert(self, tokens: Sequence[int]) -> int:
        """Insert ``tokens``; returns how many of them were already cached (their KV is a duplicate the
        caller frees). New nodes are unreferenced (evictable) until locked."""
        if self.disabled or not tokens:
            return 0
        matched, node = self.match_prefix(tokens)
        if matched < len(tokens):
            new = RadixNode(list(tokens[matched:]), node)
            new.last_access = next(self._clock)
            node.children[new.key[0]] = new
            self.total_size += len(new.key)
            self.evictable_size += len(new.key)
        return matched

    def lock(self, node: RadixNode) -> None:
        """A running request now uses the path root → node (its tokens stop being evictable)."""
        cur: RadixNode | None = node
        while cur is not None and cur is not self.root:
            if cur.lock_ref == 0:
                self.evictable_size -= len(cur.key)
            cur.lock_ref += 1
            cur = cur.parent

    def unlock(self, node: RadixNode) -> None:
        """Release a :meth:`lock`."""
        cur: RadixNode | None = node
        while cur is not None and cur is not self.root:
            cur.lock_ref -= 1
            if cur.lock_ref == 0:
                self.evictable_size += len(cur.key)
            cur = cur.parent

    def evict(self, num_tokens: int) -> int:
        """Evict unreferenced leaves, least recently used first, until ``num_tokens`` are freed."""
        if num_tokens <= 0 or self.evictable_size == 0:
            return 0
        heap = [(n.last_access, id(n), n) for n in self._leaves() if n.lock_ref == 0]
        heapq.heapify(heap)
        freed = 0
        while heap and freed < num_tokens:
            _, _, leaf = heapq.heappop(heap)
            parent = leaf.parent
            assert parent is not None
            del parent.children[leaf.key[0]]
            size = len(leaf.key)
            freed += size
            self.total_size -= size
            self.evictable_size -= size
            if parent is not self.root and not parent.children and parent.lock_ref == 0:
                heapq.heappush(heap, (parent.last_access, id(parent), parent))
        return freed

    def _leaves(self) -> list[RadixNode]:
        out, stack = [], [self.root]
        while stack:
            node = stack.pop()
            if node.children:
                stack.extend(node.children.values())
            elif node is not self.root:
                out.append(node)
        return out
