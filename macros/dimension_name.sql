{#
    A dimension member's display name: the snapshot's name, `unknown <label> <id>` when the id is
    not in the snapshot (or has no name there), `no <label>` when the event carried no id.
#}
{% macro dimension_name(id_column, name_column, label) -%}
case
    when {{ id_column }} is null then 'no {{ label }}'
    when {{ name_column }} is null
        then 'unknown {{ label }} ' || cast({{ id_column }} as {{ dbt.type_string() }})
    else {{ name_column }}
end
{%- endmacro %}
