"""The report: NPS, CSAT and responses per week as one self-contained HTML page.

    data.py    reads the analytics marts (hotjar__nps, hotjar__ratings, hotjar__answers)
               through tap_hotjar.warehouse.connection, into plain Python objects
    charts.py  one Vega-Lite chart per survey and question (Altair)
    page.py    the page: tables, charts and the JavaScript that draws them, all inline
    cli.py     the `hotjar-report` command (also Meltano's `hotjar-report` utility)

The plotting libraries are the `report` extra: pip install 'tap-hotjar[report]'.
"""
