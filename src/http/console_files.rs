// The files of console/src/, served by console.rs (a test checks the list is whole).
[
]
