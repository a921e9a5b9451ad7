"""Faker's en_US word lists, read once and shared by detection and fake values."""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def first_and_last_names() -> tuple[np.ndarray, np.ndarray]:
    from faker.providers.person.en_US import Provider

    # Faker keeps names in a weighted dict or a plain tuple depending on its version; list() takes both.
    first, last = (np.array(list(names), dtype=object) for names in (Provider.first_names, Provider.last_names))
    return first, last


@cache
def known_names() -> frozenset[str]:
    first, last = first_and_last_names()
    return frozenset(first) | frozenset(last)


@cache
def lorem_words() -> tuple[np.ndarray, np.ndarray]:
    """(words, Capitalised words) from Faker's en_US lorem list."""
    from faker.providers.lorem.en_US import Provider

    words = list(Provider.word_list)
    return np.array(words, dtype=object), np.array([w[0].upper() + w[1:] for w in words], dtype=object)

