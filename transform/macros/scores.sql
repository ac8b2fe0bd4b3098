{% macro iso_week_start(timestamp_expression) %}
    {#- The Monday of the ISO week (date_trunc('week') is ISO in both databases), as a date. -#}
    cast({{ dbt.date_trunc('week', timestamp_expression) }} as date)
{%- endmacro %}

{% macro parse_score(text_expression) %}
    {#-
        The number an answer's text holds, or null. Written without regular
        expressions or try_cast, whose forms differ between DuckDB and PostgreSQL:
        a non-negative decimal (digits and at most one point, 1 to 12 characters
        after trimming) is cast; anything else ("n/a", "", "-", "1e3") is null,
        never an error that stops the build.
    -#}
    {%- set t = 'trim(' ~ text_expression ~ ')' -%}
    case
        when length({{ t }}) between 1 and 12
            and translate({{ t }}, '0123456789.', '') = ''
            and length({{ t }}) - length(replace({{ t }}, '.', '')) <= 1
            and {{ t }} <> '.'
        then cast({{ t }} as double precision)
    end
{%- endmacro %}

{% macro scale_max(question_type_expression) %}
    {#- The highest value of a scale question's answers (API reference: question types). -#}
    case {{ question_type_expression }}
        when 'nps' then 10
        when 'rating-1-5' then 5
        when 'rating-1-7' then 7
        when 'reaction' then 5
    end
{%- endmacro %}

{% macro scale_min(question_type_expression) %}
    case {{ question_type_expression }}
        when 'nps' then 0
        when 'rating-1-5' then 1
        when 'rating-1-7' then 1
        when 'reaction' then 1
    end
{%- endmacro %}
