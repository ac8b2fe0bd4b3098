{#- No two rows share the same values in all of `combination` (a composite key). -#}
{% test unique_combination_of_columns(model, combination) %}
select {{ combination | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ combination | join(', ') }}
having count(*) > 1
{% endtest %}
