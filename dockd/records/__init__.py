"""Records under the rules: retention and holds, cases, evidence export, access register
and the reports for supervisors (rules art. 8, 12-16)."""
