{% macro identity_attribute() %}
    {#-
        The name of the user attribute that holds the user id set through Hotjar's
        Identify API, as a SQL string literal: the var hotjar_identity_attribute,
        else $HOTJAR_IDENTITY_ATTRIBUTE (Meltano: the utility's identity_attribute
        setting), else user_id.
    -#}
    {%- set name = var('hotjar_identity_attribute', env_var('HOTJAR_IDENTITY_ATTRIBUTE', 'user_id')) -%}
    '{{ name | replace("'", "''") }}'
{%- endmacro %}
