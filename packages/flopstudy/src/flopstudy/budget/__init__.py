"""Budgets and what they buy: time, energy and CO2 of a run on given hardware (`cost`) and the budget planner
(`planner`: the best method, backbone and steps for a budget)."""
