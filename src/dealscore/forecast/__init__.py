"""Pipeline forecast: expected bookings per month and quarter, with a range, by team and owner.

Modules, lowest first (import them directly; this file re-exports nothing so the
scoring layer can use the time-to-close model without importing what sits above it):

- :mod:`~dealscore.forecast.periods`: months and quarters as ``[start, end)``;
- :mod:`~dealscore.forecast.features`: the time-to-close model's point-in-time inputs;
- :mod:`~dealscore.forecast.close_time`: when a deal closes if it is won (a distribution);
- :mod:`~dealscore.forecast.creation`: bookings from deals not created yet;
- :mod:`~dealscore.forecast.montecarlo`: bookings drawn deal by deal (won or not, when);
- :mod:`~dealscore.forecast.engine`: the use case (history or stored scores → forecast table);
- :mod:`~dealscore.forecast.peers` and :mod:`~dealscore.forecast.backtest`: honest replay of past quarters.
"""
