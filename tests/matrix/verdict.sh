# Sourced by the matrix scripts: what a pytest log says, in one line or a list.

# The last pytest summary line of log $1 ("12 passed, 3 skipped in 4.5s"), without its rules.
pytest_summary() {
    grep -E '^=* ?[0-9]+ (passed|failed|error)' "$1" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//'
}

# The tests log $1 reports as FAILED or ERROR, each once, at most 40.
pytest_failures() {
    grep -E '^(FAILED|ERROR) ' "$1" | sort -u | head -n 40
}
