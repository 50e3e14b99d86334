"""Finding ids by name: Names.search (every match, duplicates included) and Names.find (exactly one, or a
one-line error naming the candidates)."""

from __future__ import annotations

import pytest

from latentatlas import LatentAtlasError
from latentatlas.ratings.names import Names, read_names


@pytest.fixture
def movies(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text("movieId,title,genres\n"
                    "1,Toy Story (1995),Animation\n"
                    "3114,Toy Story 2 (1999),Animation\n"
                    "6,Heat (1995),Action\n"
                    "318,\"Shawshank Redemption, The (1994)\",Drama\n"
                    "34048,War of the Worlds (2005),Sci-Fi\n"
                    "64997,War of the Worlds (2005),Sci-Fi\n"
                    "2,Jumanji (1995),Adventure\n"
                    "7,\"Théâtre, Le (1990)\",Drama\n", encoding="utf-8")
    return read_names(path)


def test_search_is_case_insensitive_substring_with_exact_names_first(movies):
    assert movies.search("toy story").tolist() == [1, 3114]
    assert movies.search("TOY STORY 2").tolist() == [3114]
    assert movies.search("  war   of the WORLDS ").tolist() == [34048, 64997]  # duplicates: both ids
    assert movies.search("the shawshank").tolist() == [318]  # "…, The (1994)" read as "The …"
    assert movies.search("le théâtre").tolist() == [7]
    assert movies.search("Heat (1995)").tolist() == [6]
    assert movies.search("an").tolist() == [318, 2]  # "Animation" is a genre, not a name
    assert movies.search("an", limit=1).tolist() == [318]
    assert movies.search("nothing like it").tolist() == []


def test_find_returns_the_one_id_that_fits(movies):
    assert movies.find("Toy Story (1995)") == 1
    assert movies.find("toy story") == 1  # the name without its year is exact: no ambiguity with Toy Story 2
    assert movies.find("The Shawshank Redemption") == 318
    assert movies.find("jumanji") == 2
    assert movies.find("shawshank") == 318  # no exact name, one name contains it
    assert isinstance(movies.find("heat"), int)


def test_find_refuses_ambiguous_and_unknown_names_in_one_line(movies):
    with pytest.raises(LatentAtlasError) as info:
        movies.find("War of the Worlds")
    message = str(info.value)
    assert "\n" not in message and "ambiguous" in message and "34048" in message and "64997" in message
    with pytest.raises(LatentAtlasError, match=r"'story' is ambiguous: 2 ids have names containing it \(1 'Toy"):
        movies.find("story")
    with pytest.raises(LatentAtlasError, match="no name matches 'Alien'"):
        movies.find("Alien")
    with pytest.raises(LatentAtlasError, match="must be a string"):
        movies.find(318)
    with pytest.raises(LatentAtlasError, match="must not be empty"):
        movies.search("  ")


def test_a_long_candidate_list_stays_short_and_escaped():
    names = Names(list(range(500)), [f"Episode {k}\x1b[2J" for k in range(500)])
    with pytest.raises(LatentAtlasError) as info:
        names.find("episode")
    message = str(info.value)
    assert "500 ids" in message and "and 492 more" in message and "\x1b" not in message and len(message) < 600


def test_string_ids_come_back_as_strings():
    names = Names(["b1", "b2"], ["Mon Ami Gabi", "Gabi's Diner"])
    assert names.search("gabi").tolist() == ["b1", "b2"]
    assert names.find("mon ami") == "b1"
