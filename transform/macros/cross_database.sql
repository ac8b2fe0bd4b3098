{#-
    Where DuckDB and PostgreSQL differ. Every model is one SQL source for both;
    these macros dispatch on the adapter (default__ = PostgreSQL's form).
-#}

{% macro json_type() %}{{ return(adapter.dispatch('json_type', 'hotjar')()) }}{% endmacro %}
{% macro default__json_type() %}jsonb{% endmacro %}
{% macro duckdb__json_type() %}json{% endmacro %}


{% macro as_json(expression) %}{{ return(adapter.dispatch('as_json', 'hotjar')(expression)) }}{% endmacro %}
{#- to_jsonb turns target-postgres's jsonb[] into one jsonb array and leaves jsonb as it is. -#}
{% macro default__as_json(expression) %}to_jsonb({{ expression }}){% endmacro %}
{% macro duckdb__as_json(expression) %}cast({{ expression }} as json){% endmacro %}


{% macro divide(numerator, denominator) %}{{ return(adapter.dispatch('divide', 'hotjar')(numerator, denominator)) }}{% endmacro %}
{#-
    A decimal quotient, never integer division (PostgreSQL divides integers as
    integers), null for a zero denominator, and not rounded. PostgreSQL: numeric.
    DuckDB computes any decimal division in DOUBLE, so it says so.
-#}
{% macro default__divide(numerator, denominator) %}(cast({{ numerator }} as numeric) / nullif({{ denominator }}, 0)){% endmacro %}
{% macro duckdb__divide(numerator, denominator) %}(cast({{ numerator }} as double) / nullif({{ denominator }}, 0)){% endmacro %}


{% macro json_array_elements(relation, array_column, carried_columns) %}
    {{ return(adapter.dispatch('json_array_elements', 'hotjar')(relation, array_column, carried_columns)) }}
{% endmacro %}
{#-
    One row per element of a JSON array column: the carried columns, the element
    (`element`, JSON) and its 1-based index (`element_index`). Rows whose array is
    null or empty give none.
-#}
{% macro default__json_array_elements(relation, array_column, carried_columns) %}
    select
        {% for c in carried_columns %}source_rows.{{ c }}, {% endfor %}
        elements.element,
        elements.element_index
    from {{ relation }} as source_rows
    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(source_rows.{{ array_column }}) = 'array' then source_rows.{{ array_column }} end
    ) with ordinality as elements(element, element_index)
{% endmacro %}
{#- DuckDB 1.1 has no WITH ORDINALITY: unnest and generate_subscripts in one select list run in step. -#}
{% macro duckdb__json_array_elements(relation, array_column, carried_columns) %}
    select
        {% for c in carried_columns %}{{ c }}, {% endfor %}
        unnest(element_list) as element,
        generate_subscripts(element_list, 1) as element_index
    from (
        select
            {% for c in carried_columns %}{{ c }}, {% endfor %}
            from_json(
                case when json_type({{ array_column }}) = 'ARRAY' then {{ array_column }} end,
                '["json"]'
            ) as element_list
        from {{ relation }}
    ) as source_rows
{% endmacro %}


{% macro json_array_agg(expression, order_by) %}{{ return(adapter.dispatch('json_array_agg', 'hotjar')(expression, order_by)) }}{% endmacro %}
{% macro default__json_array_agg(expression, order_by) %}jsonb_agg({{ expression }} order by {{ order_by }}){% endmacro %}
{% macro duckdb__json_array_agg(expression, order_by) %}to_json(list({{ expression }} order by {{ order_by }})){% endmacro %}


{% macro json_object_agg(key, value) %}{{ return(adapter.dispatch('json_object_agg', 'hotjar')(key, value)) }}{% endmacro %}
{% macro default__json_object_agg(key, value) %}jsonb_object_agg({{ key }}, {{ value }}){% endmacro %}
{#- json_group_object is a macro in DuckDB 1.1, which takes no ORDER BY: key order is unspecified. -#}
{% macro duckdb__json_object_agg(key, value) %}json_group_object({{ key }}, {{ value }}){% endmacro %}
